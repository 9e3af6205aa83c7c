"""The `prune` knob: global magnitude pruning of each model a trial trains, then fine-tuning under the masks.

When (`PruneSchedule`): a trial of `planned` epochs trains dense, then prunes at the start of its last
`fine_tune = max(1, ceil(planned / 4))` epochs and fine-tunes the pruned weights in them (planned 1: it
prunes before its one epoch). Early stopping never ends a trial before it has pruned: when patience runs
out in the dense phase, pruning starts at the next epoch and `fine_tune` epochs follow, then the trial
ends (early stopped). From the pruning epoch on, patience counts among the pruned epochs only: the pruned
model is a new one, and the best of a pruned trial is taken among its pruned epochs.

How (`masked`): at the pruning epoch, `torch.nn.utils.prune.global_unstructured` with L1 magnitude zeroes
the `amount` of smallest weights over all the Linear, conv and LSTM/GRU weight matrices of one model (each
learner's model on its own; biases, batch norm and embeddings stay dense). The mask lives for one epoch
only: when it ends, `prune.remove` makes it permanent, so every checkpoint and `best/model.pt` hold plain
zeroed weights under their original keys, and each later epoch masks again the weights that are zero.
A trial resumed from any checkpoint therefore does what the uninterrupted trial did.

What it reports: `params` counts the non-zero parameters of the model the trial will export, from its first
epoch (before the pruning epoch, the dense count less `still_to_prune`): a scheduler comparing trials at a
rung, or a constraint on `params`, sees what pruning will make of each model, not a dense count that every
trial shares until its last epochs.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn
from torch.nn.utils import prune

#: layers whose `weight` is pruned; LSTM/GRU have their `weight_ih_l*` / `weight_hh_l*` pruned
PRUNED_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
RECURRENT = (nn.LSTM, nn.GRU)


def fine_tune_epochs(planned: int) -> int:
    """The epochs a pruned model trains: a quarter of the trial, at least one."""
    return max(1, math.ceil(planned / 4))


@dataclass(frozen=True)
class PruneSchedule:
    """Prune `amount` of the weights at the start of epoch `start`; the trial ends after epoch `last`."""

    amount: float
    start: int
    last: int

    @classmethod
    def planned(cls, amount: float, planned: int) -> PruneSchedule | None:
        """The schedule of a trial of `planned` epochs; None without pruning (`amount` 0)."""
        if amount <= 0:
            return None
        return cls(amount, planned - fine_tune_epochs(planned) + 1, planned)

    @classmethod
    def resumed(cls, amount: float, planned: int, saved: Mapping[str, Any] | None, epoch: int,
                saved_planned: int) -> PruneSchedule | None:
        """The schedule of a trial resumed after `epoch`, from a checkpoint that saved `saved` when the trial
        was planned to `saved_planned` epochs (more now, if it was extended). A schedule brought forward by
        early stopping is kept; one whose pruning has begun runs to the new `planned`; one still ahead is
        planned again."""
        schedule = cls.planned(amount, planned)
        if schedule is None or saved is None:
            return schedule
        saved_schedule = cls(amount, saved["start"], saved["last"])
        if saved_schedule.last < saved_planned:  # brought forward: the trial ends when its fine-tuning does
            return saved_schedule
        if saved_schedule.start <= epoch:
            return cls(amount, saved_schedule.start, planned)
        return schedule

    def pruned(self, epoch: int) -> bool:
        return epoch >= self.start

    def brought_forward(self, epoch: int) -> PruneSchedule:
        """Patience ran out at dense epoch `epoch`: prune at the next one, fine-tune as long as planned."""
        return PruneSchedule(self.amount, epoch + 1, epoch + self.last - self.start + 1)

    def as_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps (see `resumed`)."""
        return asdict(self)


@contextmanager
def masked(models: Sequence[nn.Module], schedule: PruneSchedule | None, epoch: int) -> Iterator[None]:
    """Epoch `epoch` of `models` with their pruning masks on: the `amount` smallest weights at the pruning
    epoch, the zero weights after it; none before it or without a schedule. The masks are made permanent
    when the epoch ends (the optimizer keeps its parameters: pruning moves each, it does not replace it)."""
    if schedule is None or not schedule.pruned(epoch):
        yield
        return
    layers = [_mask(model, schedule.amount if epoch == schedule.start else None) for model in models]
    try:
        yield
    finally:
        for weights in layers:
            _make_permanent(weights)


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """`(layer, name)` of every weight pruning may zero, in the model's order."""
    weights: list[tuple[nn.Module, str]] = []
    for module in model.modules():
        if isinstance(module, RECURRENT):
            weights += [(module, name) for name, _ in module.named_parameters(recurse=False)
                        if name.startswith("weight_")]
        elif isinstance(module, PRUNED_LAYERS):
            weights.append((module, "weight"))
    return weights


def still_to_prune(models: Sequence[nn.Module], amount: float) -> int:
    """How many of the models' non-zero weights pruning by `amount` will zero: each model loses its
    round(amount x prunable) smallest weights, zeros first (what `global_unstructured` removes)."""
    left = 0
    for model in models:
        weights = [getattr(layer, name) for layer, name in prunable_weights(model)]
        total = sum(w.numel() for w in weights)
        nonzero = sum(int(w.count_nonzero()) for w in weights)
        left += max(0, nonzero - (total - round(amount * total)))
    return left


def _mask(model: nn.Module, amount: float | None) -> list[tuple[nn.Module, str, list[str]]]:
    """Mask `model`'s prunable weights: the `amount` smallest over all of them, or (None) the zeros.
    Returns each weight with its layer's parameter order, which `_make_permanent` restores."""
    weights = prunable_weights(model)
    orders = [list(layer._parameters) for layer, _ in weights]
    if amount is not None:
        prune.global_unstructured(weights, pruning_method=prune.L1Unstructured, amount=amount)
    else:
        for layer, name in weights:
            prune.custom_from_mask(layer, name, getattr(layer, name) != 0)
    return [(layer, name, order) for (layer, name), order in zip(weights, orders, strict=True)]


def _make_permanent(weights: list[tuple[nn.Module, str, list[str]]]) -> None:
    """Zeroed weights in place of the masks, under their own names and in their layer's order (so the
    state dict's keys and order are the dense model's)."""
    for layer, name, order in weights:
        prune.remove(layer, name)
        parameters = layer._parameters
        for key in [key for key in order if key in parameters]:
            parameters[key] = parameters.pop(key)
