"""What a trained model costs to keep and to run: the `params`, `model_bytes` and `latency_ms` every
built-in reports.

A multi-objective search trades accuracy against these (`objectives`, `constraints`), and its scheduler
compares trials at every rung, so every report carries them. They are measured on the predictor that is
exported (one model, an ensemble, or k folds averaged): what `best/model.pt` would hold and serve.
"""
from __future__ import annotations

import io
import statistics
import time
from copy import deepcopy

import torch
from torch import Tensor, nn

#: forward passes before timing (the first calls allocate and pick kernels), then the passes timed
WARMUP_CALLS = 3
TIMED_CALLS = 30


def nonzero_params(model: nn.Module) -> int:
    """Parameters that are not exactly zero. Pruning zeroes weights without shrinking their tensors, and
    this counts what a sparse format would keep, so pruning shows; buffers (batch-norm statistics, an
    ensemble's weights) are not parameters and do not count."""
    counts = [torch.count_nonzero(parameter.detach()) for parameter in model.parameters()]
    return int(torch.stack(counts).sum()) if counts else 0  # one host sync


def state_bytes(model: nn.Module) -> int:
    """Bytes of `torch.save(model.state_dict())`: the size of the exported `model.pt` (up to its archive
    name, a few bytes)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def on_cpu(model: nn.Module) -> nn.Module:
    """`model` itself when it is on the CPU, else a CPU copy (the trial's own model stays where it trains)."""
    if all(tensor.device.type == "cpu" for tensor in (*model.parameters(), *model.buffers())):
        return model
    return deepcopy(model).cpu()


@torch.no_grad()
def latency_ms(model: nn.Module, x: Tensor, lengths: Tensor | None = None, *, calls: int = TIMED_CALLS,
               warmup: int = WARMUP_CALLS) -> float:
    """Median milliseconds of a forward pass of one row of `x` (batch size 1), in eval mode, on one CPU thread.

    One row on one thread is how a deployed classifier answers a request, and it does not depend on how
    many cores the trial got or what shares them, so trials compare. The rows are `calls` evenly spaced
    rows of `x` (real data: a text row's length decides its work), with `lengths` (text) passed along.
    `model` must be on the CPU (`on_cpu`); its train/eval mode and the thread count are restored after.
    """
    rows = torch.linspace(0, len(x) - 1, min(len(x), calls)).round().long()
    samples = [(x[i:i + 1].cpu(),) if lengths is None else (x[i:i + 1].cpu(), lengths[i:i + 1].cpu())
               for i in rows.tolist()]
    training, threads = model.training, torch.get_num_threads()
    model.eval()
    torch.set_num_threads(1)
    try:
        for i in range(warmup):
            model(*samples[i % len(samples)])
        times = []
        for i in range(calls):
            started = time.perf_counter()
            model(*samples[i % len(samples)])
            times.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
        model.train(training)
    return statistics.median(times) * 1000.0


def fixed_costs(model: nn.Module, x: Tensor, lengths: Tensor | None = None) -> dict[str, float | int]:
    """`model_bytes` and `latency_ms`: what training and pruning leave as they are (dense tensors keep
    their size and their speed), so a trial measures them once, on `model`'s validation rows `x`."""
    cpu = on_cpu(model)
    return {"model_bytes": state_bytes(cpu), "latency_ms": latency_ms(cpu, x, lengths)}
