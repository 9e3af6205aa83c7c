"""The checkpoint file: its layout, atomic writing, and the RNG states that make a resume exact.

`checkpoint.pt` (in the folder Ray Tune persists) is one `torch.save`d dict:

    format          layout version (1)
    trainable, knobs, model_config, input_shape, n_classes, data, seed
                    the model record: everything needed to rebuild the model and its data split
    epoch           last finished epoch (1-based)
    planned_epochs  epochs this trial runs unless stopped early
    metrics         what was reported for `epoch`
    best            {"metric", "mode", "value", "epoch"}: best-so-far, for early stopping
    model           model.state_dict()
    optimizer       optimizer.state_dict()
    scheduler       {"lr_schedule", "base_lr", "planned_epochs"}: the schedule is a pure function of the
                    epoch (see `optim.lr_factor`), so these and `epoch` are its whole state
    rng             {"torch", "cuda", "shuffle"}: global CPU / CUDA generators and the batch-order generator

Everything in it is a tensor or a plain Python value, so it loads with `weights_only=True`.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import torch

from trainables.knobs import Knobs

CHECKPOINT_FILE = "checkpoint.pt"
FORMAT = 1
#: keys of the model record, shared by checkpoints and exported models (`model.json`)
RECORD_KEYS = ("trainable", "knobs", "model_config", "input_shape", "n_classes", "data", "seed")


def model_record(trainable: str, knobs: Knobs, input_shape: tuple[int, ...], n_classes: int,
                 data: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """What rebuilds a trained model and its data split, in JSON-safe types."""
    record = {"trainable": trainable, "knobs": knobs.as_dict(), "model_config": asdict(knobs.model),
              "input_shape": list(input_shape), "n_classes": n_classes, "data": dict(data), "seed": seed}
    return json.loads(json.dumps(record))  # plain types only (a YAML loader's mappings, tuples -> lists)


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(tmp_path)` then move the result over `path`, so `path` is never half-written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(state: Mapping[str, Any], directory: str | os.PathLike) -> Path:
    path = Path(directory) / CHECKPOINT_FILE
    atomic_write(path, lambda tmp: torch.save(dict(state, format=FORMAT), tmp))
    return path


def load_checkpoint(directory: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint dict in `directory`, tensors on the CPU."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CHECKPOINT_FILE} in {directory}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format {state.get('format')!r} (expected {FORMAT})")
    return state


def rng_state(shuffle: torch.Generator) -> dict[str, Any]:
    """Every random stream training draws from: dropout (global CPU/CUDA) and batch order (`shuffle`)."""
    return {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(state: Mapping[str, Any], shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
