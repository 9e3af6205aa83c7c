"""The Ray Tune function trainable for every built-in: the Ray-facing shell around `loop.run_training`."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from trainables.context import TrialContext
from trainables.loop import run_training


def train_builtin(config: dict[str, Any], context: TrialContext) -> None:
    """Train one trial: `config` holds the trial's knobs, `context` the experiment's fixed settings.

    Use as `tune.with_resources(tune.with_parameters(train_builtin, context=ctx), {"cpu": c, "gpu": g})`.
    Resumes from `tune.get_checkpoint()` when Ray restores or retries the trial.
    """
    torch.set_num_threads(cpu_share())
    checkpoint = tune.get_checkpoint()
    with checkpoint.as_directory() if checkpoint is not None else contextlib.nullcontext() as start:
        run_training(config, context, report=report_to_tune, start_checkpoint=start, device=trial_device())


def report_to_tune(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
    """Ray copies the checkpoint folder into the trial's storage before `tune.report` returns."""
    checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir is not None else None
    tune.report(metrics, checkpoint=checkpoint)


def cpu_share() -> int:
    """Intra-op threads for this trial: its whole CPUs from Ray (at least 1), so concurrent trials do not
    oversubscribe the node. Outside a Ray worker, 1 (and no Ray instance is started to ask)."""
    if not ray.is_initialized():
        return 1
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
    return max(1, int(cpus))


def trial_device() -> torch.device:
    """CUDA when the trial was given a GPU (Ray sets CUDA_VISIBLE_DEVICES, so it is `cuda:0`), else CPU."""
    if torch.cuda.is_available() and ray.is_initialized() and ray.get_gpu_ids():
        return torch.device("cuda")
    return torch.device("cpu")
