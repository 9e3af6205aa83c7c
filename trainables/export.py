"""The best trial's model, out of Ray's storage: export, reload, and score on a held-out split."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainables.checkpoint import CHECKPOINT_FILE, RECORD_KEYS, atomic_write, load_checkpoint
from trainables.data import load_dataset
from trainables.loop import evaluate
from trainables.models import build_model
from trainables.validation import require

MODEL_FILE = "model.pt"
RECORD_FILE = "model.json"


def export_best(checkpoint_dir: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """Write `model.pt` (the state_dict) and `model.json` (the model record, epoch and metrics) to `dest_dir`.

    Each file is written to a temporary name and renamed, so a reader never sees a half-written one;
    the weights go first, so a `model.json` always has its weights beside it.
    """
    state = load_checkpoint(checkpoint_dir)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    record = {**{key: state[key] for key in RECORD_KEYS}, "epoch": state["epoch"], "metrics": state["metrics"]}
    atomic_write(dest / MODEL_FILE, lambda tmp: torch.save(state["model"], tmp))
    atomic_write(dest / RECORD_FILE, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
    return dest


def read_model(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """`(record, state_dict)` from an export folder (`model.json` + `model.pt`) or a checkpoint folder."""
    folder = Path(path)
    if (folder / RECORD_FILE).is_file():
        record = json.loads((folder / RECORD_FILE).read_text())
        return record, torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    if (folder / CHECKPOINT_FILE).is_file():
        state = load_checkpoint(folder)
        return state, state["model"]
    raise FileNotFoundError(f"{folder} holds neither {RECORD_FILE} (an export) nor {CHECKPOINT_FILE} (a checkpoint)")


def load_model(path: str | os.PathLike) -> nn.Module:
    """The trained model from an export or checkpoint folder, rebuilt on the CPU in eval mode."""
    record, weights = read_model(path)
    model = build_model(record["trainable"], record["model_config"], tuple(record["input_shape"]),
                        record["n_classes"])
    model.load_state_dict(weights)
    return model.eval()


def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, split: str = "test") -> dict[str, float | int]:
    """Score a checkpoint (or export) on `split`, rebuilt from its saved data spec and seed (the same
    split the trial trained on). Keys are prefixed by the split: `test_accuracy`, `test_loss`, `test_samples`."""
    record, _ = read_model(checkpoint_dir)
    x, y = load_dataset(record["data"], record["seed"]).split(split)
    require(len(y) > 0, f"{split} split", 0, "is empty (is its fraction 0?)")
    loss, accuracy = evaluate(load_model(checkpoint_dir), x, y)
    return {f"{split}_accuracy": accuracy, f"{split}_loss": loss, f"{split}_samples": len(y)}
