"""How parameters are updated: optimizers, mixed precision, the learning-rate schedule and the weight penalties.

The schedule is a pure function of the epoch (as in nanoGPT's `get_lr`), so the epoch stored in a
checkpoint is the whole scheduler state and resuming cannot drift.

Mixed precision (`amp`) is float16 autocast with a `GradScaler`, on CUDA only. The scaler skips a step
whose gradients overflowed; deciding that needs the host to read a flag every step, unless the optimizer
takes the decision itself on the GPU: so with `amp` the optimizers that have a fused implementation
(adam, adamw, sgd) use it, and training keeps its no-host-sync-per-batch property. rmsprop has none: with
`amp` it waits for the GPU once per step.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

from trainables.configs import LR_SCHEDULES

OptimizerFactory = Callable[[Iterable[nn.Parameter], float, float], torch.optim.Optimizer]

#: the names are `trainables.configs.OPTIMIZERS`
OPTIMIZERS: dict[str, OptimizerFactory] = {
    "adam": lambda params, lr, momentum: torch.optim.Adam(params, lr=lr),
    "adamw": lambda params, lr, momentum: torch.optim.AdamW(params, lr=lr),
    "sgd": lambda params, lr, momentum: torch.optim.SGD(params, lr=lr, momentum=momentum),
    "rmsprop": lambda params, lr, momentum: torch.optim.RMSprop(params, lr=lr, momentum=momentum),
}
#: the same optimizers' fused implementations (one kernel per step, and GradScaler's overflow check on the GPU)
FUSED: dict[str, OptimizerFactory] = {
    "adam": lambda params, lr, momentum: torch.optim.Adam(params, lr=lr, fused=True),
    "adamw": lambda params, lr, momentum: torch.optim.AdamW(params, lr=lr, fused=True),
    "sgd": lambda params, lr, momentum: torch.optim.SGD(params, lr=lr, momentum=momentum, fused=True),
}


#: `step` divides the learning rate by this factor at each third of the planned epochs
STEP_GAMMA = 0.1


def make_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, momentum: float, *,
                   fused: bool = False) -> torch.optim.Optimizer:
    """The optimizer `name`; `momentum` only matters to sgd and rmsprop (Adam's betas are left alone).
    `fused`: its fused implementation where it has one (meant for mixed precision on CUDA)."""
    return (FUSED if fused and name in FUSED else OPTIMIZERS)[name](params, lr, momentum)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """`optimizer.load_state_dict(state)`, keeping the implementation it was built with: a saved param group
    brings its `fused` flag along, and a fused optimizer (which GradScaler hands the overflow flag) that
    loaded a non-fused state (a CPU checkpoint resumed on CUDA) would fail its first step."""
    optimizer.load_state_dict(state)
    if "fused" in optimizer.defaults:
        for group in optimizer.param_groups:
            group["fused"] = optimizer.defaults["fused"]


def amp_enabled(amp: bool | None, device: torch.device) -> bool:
    """Mixed precision runs on CUDA only: on by default there (`amp` None), off with `amp: false`; on the
    CPU `amp` has no effect (float16 autocast is slow there and a GradScaler has nothing to do)."""
    return device.type == "cuda" and amp is not False


def new_scaler(device: torch.device, enabled: bool) -> torch.amp.GradScaler:
    """A GradScaler; disabled, its `scale`, `unscale_`, `step` and `update` are plain pass-throughs."""
    return torch.amp.GradScaler(device.type, enabled=enabled)


def lr_factor(schedule: str, epoch: int, planned_epochs: int) -> float:
    """Multiplier of the base learning rate during 0-based `epoch` of `planned_epochs`.

    cosine: half a cosine from 1 towards 0 over the planned epochs (never exactly 0 while training);
    step: x0.1 after each third of the planned epochs.
    """
    if schedule == "none":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / planned_epochs))
    if schedule == "step":
        step_size = max(1, math.ceil(planned_epochs / 3))
        return STEP_GAMMA ** (epoch // step_size)
    raise ValueError(f"lr_schedule: must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def penalised_weights(model: nn.Module) -> list[nn.Parameter]:
    """Weight matrices and kernels (ndim > 1): biases and normalisation scales/shifts are not penalised."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim > 1]


def weight_penalty(weights: list[nn.Parameter], l1: float, l2: float) -> torch.Tensor | None:
    """`l1 * sum|w| + l2 * sum w^2` (Keras' convention), or None when both are 0.

    This is a term added to the loss, so it flows through the optimizer's adaptive scaling; it is not
    decoupled weight decay. Both > 0 is the elastic net.
    """
    terms = []
    if l1 > 0:
        terms.append(l1 * torch.stack([w.abs().sum() for w in weights]).sum())
    if l2 > 0:
        terms.append(l2 * torch.stack([w.pow(2).sum() for w in weights]).sum())
    return sum(terms) if terms else None
