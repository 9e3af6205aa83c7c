"""A trial's place among its data-parallel workers: all the shared loop needs from `torch.distributed`.

`Ranks()` is one process, and then every method is a no-op, so `loop.run_training` reads the same with one
worker or many. With `world > 1` (the Ray Train workers of a `resources.workers: N` trial; `TorchTrainer`
has already joined them in a process group: gloo on CPU, nccl on GPU):

- every rank draws the same shuffled order of the training rows (same seed) and trains on its shard of it,
  with the same number of steps on every rank, which DDP needs (`shard`);
- `batch_size` stays the global batch: each rank takes its share of it (`local_batch_size`), so a config
  means nearly the same optimisation with one worker or many;
- the models that train are wrapped in DistributedDataParallel, which averages gradients over the ranks
  during `backward` (`wrap`);
- after each epoch the batch-norm statistics are copied from rank 0 (`sync_buffers`), the training scores
  are averaged over the ranks (`weighted_mean`) and every rank takes rank 0's scores (`from_rank0`), so all
  ranks hold the same model, report the same metrics and stop (early, diverged) at the same epoch;
- only rank 0 writes checkpoints (`writes_checkpoints`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Ranks:
    """This process's rank among `world` data-parallel workers of one trial."""

    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"rank must be in [0, world), got rank {self.rank} of world {self.world}")

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def writes_checkpoints(self) -> bool:
        return self.rank == 0

    def shard(self, order: Tensor) -> Tensor:
        """This rank's rows of an epoch's `order`: every `world`-th row from `rank`, after dropping the
        `len(order) % world` last rows (a different few each epoch, as the order is shuffled) so that every
        rank gets as many rows, hence as many steps."""
        if not self.distributed:
            return order
        usable = len(order) - len(order) % self.world
        return order[self.rank:usable:self.world]

    def local_batch_size(self, batch_size: int) -> int:
        """Each rank's share of the global `batch_size` (rounded up)."""
        return math.ceil(batch_size / self.world)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module training calls: `model` itself, or `model` in DDP (which first copies rank 0's
        parameters and buffers to every rank, so all ranks start alike)."""
        if not self.distributed:
            return model
        return nn.parallel.DistributedDataParallel(model)  # device_ids None: the module's one device

    @torch.no_grad()
    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (batch-norm running statistics) to every rank. DDP sends them before each
        forward, but each rank's last forward of the epoch updates its own copy."""
        if self.distributed:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def weighted_mean(self, values: Tensor, count: int) -> tuple[Tensor, Tensor]:
        """`(mean of values over the ranks weighted by each rank's count, total count)`, as tensors on the
        values' device (no host sync); one process: `(values, count)`."""
        total = values.new_full((1,), count, dtype=torch.float64)  # filled on the device: no host-to-device copy
        if not self.distributed:
            return values, total[0]
        packed = torch.cat([values.double() * count, total])
        dist.all_reduce(packed)
        return packed[:-1] / packed[-1], packed[-1]

    def from_rank0(self, values: dict[str, Any], device: torch.device) -> dict[str, Any]:
        """Rank 0's numbers (floats, ints, bools) under the same keys on every rank."""
        if not self.distributed:
            return values
        packed = torch.tensor([float(value) for value in values.values()], dtype=torch.float64, device=device)
        dist.broadcast(packed, src=0)
        return {key: type(value)(received) for (key, value), received in zip(values.items(), packed.tolist())}
