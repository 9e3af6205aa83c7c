"""THE training loop, shared by every built-in model family.

One readable epoch loop: shuffle indices, step, clip, penalise; evaluate; report; checkpoint. Reporting
and the starting checkpoint are injected, so the loop runs the same under Ray Tune (`builtin.train_builtin`)
and in plain tests.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.checkpoint import load_checkpoint, model_record, restore_rng, rng_state, save_checkpoint
from trainables.context import TrialContext
from trainables.data import load_dataset
from trainables.knobs import TrainingConfig, parse_knobs
from trainables.models import build_model
from trainables.optim import lr_factor, make_optimizer, penalised_weights, set_lr, weight_penalty
from trainables.validation import require

#: `report(metrics, checkpoint_dir)`: checkpoint_dir is None, or a folder that exists only during the call
Reporter = Callable[[dict[str, Any], Path | None], None]

#: every key a built-in reports each epoch
METRIC_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "generalization_gap",
               "samples_per_s", "planned_epochs", "diverged", "early_stopped")
#: metrics a built-in can optimise or stop on (the numbers among METRIC_KEYS)
SEARCHABLE_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "generalization_gap")

EVAL_BATCH_SIZE = 1024


@dataclass(frozen=True)
class EpochStats:
    loss: float
    accuracy: float
    samples_per_s: float
    finite: bool


@dataclass(frozen=True)
class Progress:
    """How far a trial got, and its best value of the experiment's metric so far (for early stopping)."""

    epoch: int = 0
    best: float | None = None
    best_epoch: int = 0

    def after(self, epoch: int, value: float, mode: str) -> Progress:
        better = self.best is None or (value > self.best if mode == "max" else value < self.best)
        return Progress(epoch, value, epoch) if better else Progress(epoch, self.best, self.best_epoch)

    @property
    def epochs_without_improvement(self) -> int:
        return self.epoch - self.best_epoch


def run_training(config: Mapping[str, Any], context: TrialContext, *, report: Reporter,
                 start_checkpoint: str | os.PathLike | None = None,
                 device: torch.device | str = "cpu") -> None:
    """Train built-in `context.trainable` with the knobs in `config`, calling `report` once per epoch.

    The trial ends itself after `planned_epochs`, after `early_stopping_patience` epochs without an
    improvement of `context.metric`, or at the end of the first epoch with a non-finite training or
    validation loss (one last report with `diverged: True` and no checkpoint; no exception, so the
    experiment goes on). With `start_checkpoint` (a folder holding `checkpoint.pt`)
    it continues from the epoch after the saved one with model, optimizer and RNG states as they were,
    so the rest of the run matches an uninterrupted one.
    """
    require(context.metric in SEARCHABLE_METRICS, "metric", context.metric,
            f"must be one a built-in reports ({', '.join(SEARCHABLE_METRICS)})")
    knobs = parse_knobs(context.trainable, config)
    settings = knobs.training
    device = torch.device(device)
    data = load_dataset(context.data, context.seed).to(device)

    torch.manual_seed(context.seed)
    model = build_model(context.trainable, knobs.model, data.input_shape, data.n_classes).to(device)
    optimizer = make_optimizer(settings.optimizer, model.parameters(), settings.lr, settings.momentum)
    shuffle = torch.Generator().manual_seed(context.seed)
    planned = settings.planned_epochs(context.max_epochs)
    progress = Progress()
    record = model_record(context.trainable, knobs, data.input_shape, data.n_classes, context.data, context.seed)
    if start_checkpoint is not None:
        state = load_checkpoint(start_checkpoint)
        same_model = all(state[key] == record[key] for key in ("trainable", "model_config", "input_shape"))
        require(same_model, "start_checkpoint", str(start_checkpoint),
                f"holds a different model ({state['trainable']} {state['model_config']}) than this trial's")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng(state["rng"], shuffle)
        best = state["best"]
        progress = Progress(state["epoch"], best["value"], best["epoch"])
    weights = penalised_weights(model)

    for epoch in range(progress.epoch + 1, planned + 1):
        set_lr(optimizer, settings.lr * lr_factor(settings.lr_schedule, epoch - 1, planned))
        train = train_epoch(model, optimizer, data.x_train, data.y_train, settings, weights, shuffle)
        val_loss, val_accuracy = evaluate(model, data.x_val, data.y_val)
        diverged = not (train.finite and math.isfinite(val_loss))  # the last step can break the weights too
        metrics = {
            "epoch": epoch, "train_loss": train.loss, "train_accuracy": train.accuracy,
            "val_loss": val_loss, "val_accuracy": val_accuracy,
            "generalization_gap": train.accuracy - val_accuracy,
            "samples_per_s": train.samples_per_s, "planned_epochs": planned,
            "diverged": diverged, "early_stopped": False,
        }
        if diverged:
            report(metrics, None)  # a diverged model is not worth a checkpoint
            return
        progress = progress.after(epoch, metrics[context.metric], context.mode)
        patience = settings.early_stopping_patience
        metrics["early_stopped"] = stop = patience > 0 and progress.epochs_without_improvement >= patience
        if stop or epoch == planned or epoch % context.checkpoint_every == 0:
            with tempfile.TemporaryDirectory(prefix="tunerd-ckpt-") as folder:
                save_checkpoint({
                    **record, "epoch": epoch, "planned_epochs": planned, "metrics": metrics,
                    "best": {"metric": context.metric, "mode": context.mode, "value": progress.best,
                             "epoch": progress.best_epoch},
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": {"lr_schedule": settings.lr_schedule, "base_lr": settings.lr,
                                  "planned_epochs": planned},
                    "rng": rng_state(shuffle),
                }, folder)
                report(metrics, Path(folder))
        else:
            report(metrics, None)
        if stop:
            return


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor,
                settings: TrainingConfig, weights: list[nn.Parameter], shuffle: torch.Generator) -> EpochStats:
    """One pass over the training split in shuffled mini-batches indexed straight from memory.

    `loss` and `accuracy` are running means over the epoch's batches (cross-entropy only, without the l1/l2
    penalty, so they compare with val_loss), measured while training: cheaper than a second pass, and
    the usual Keras-style numbers. Sums stay on the device until the epoch ends, so there is no
    per-batch host sync; a non-finite loss is therefore noticed at the end of its epoch.
    A trailing batch of one sample is skipped (batch norm cannot train on it); which sample that is
    changes every epoch.
    """
    model.train()
    order = torch.randperm(len(y), generator=shuffle).to(x.device)
    batches = list(order.split(settings.batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches.pop()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    finite = torch.ones((), dtype=torch.bool, device=x.device)
    started = time.perf_counter()
    for batch in batches:
        inputs, targets = x[batch], y[batch]
        logits = model(inputs)
        loss = F.cross_entropy(logits, targets)
        penalty = weight_penalty(weights, settings.l1, settings.l2)
        objective = loss if penalty is None else loss + penalty
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if settings.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        with torch.no_grad():
            loss_sum += loss * len(batch)
            correct += (logits.argmax(dim=1) == targets).sum()
            finite &= torch.isfinite(objective)
    seen = sum(len(b) for b in batches)
    loss_mean, accuracy, ok = loss_sum.item() / seen, correct.item() / seen, bool(finite.item())
    elapsed = time.perf_counter() - started  # after .item(): waits for queued GPU work
    return EpochStats(loss_mean, accuracy, seen / max(elapsed, 1e-9), ok)


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = EVAL_BATCH_SIZE) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` (in eval mode) on `(x, y)`."""
    require(len(y) > 0, "split", 0, "has no samples to evaluate")
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), dtype=torch.long, device=x.device)
    for inputs, targets in zip(x.split(batch_size), y.split(batch_size)):
        logits = model(inputs)
        loss_sum += F.cross_entropy(logits, targets, reduction="sum")
        correct += (logits.argmax(dim=1) == targets).sum()
    return loss_sum.item() / len(y), correct.item() / len(y)
