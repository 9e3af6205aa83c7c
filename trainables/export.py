"""The best trial's model, out of Ray's storage: export, reload, score on a held-out split, and quantise.

An export folder holds `model.pt` (the float state_dict), `model.json` (the model record, epoch, metrics
and, for text, the vocabulary) and, after `quantize_export`, `model_int8.pt` (made by `trainables.quantize`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainables.checkpoint import MODEL_FILE, RECORD_FILE, RECORD_KEYS, load_checkpoint, read_model
from trainables.data import Dataset, load_dataset
from trainables.files import atomic_write
from trainables.loop import evaluate
from trainables.models import build_model
from trainables.quantize import DYNAMIC, READABLE_FORMATS, quantize, quantized_layers, quiet, restore
from trainables.validation import require

INT8_FILE = "model_int8.pt"
#: record entries copied to `model.json` when a checkpoint has them (a text model's token -> id map)
OPTIONAL_RECORD_KEYS = ("vocab",)
#: knobs that shape how text is encoded (`load_dataset` keywords), for records without `data_options`
TEXT_ENCODING = ("vocab_size", "max_len")


def export_best(checkpoint_dir: str | os.PathLike, dest_dir: str | os.PathLike) -> Path:
    """Write `model.pt` (the state_dict) and `model.json` (the model record, epoch and metrics) to `dest_dir`.

    Each file is written to a temporary name and renamed, so a reader never sees a half-written one;
    the weights go first, so a `model.json` always has its weights beside it. An older `model_int8.pt`
    there is removed: it was quantised from other weights.
    """
    state = load_checkpoint(checkpoint_dir)
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    record = {**{key: state[key] for key in RECORD_KEYS},
              **{key: state[key] for key in OPTIONAL_RECORD_KEYS if key in state},
              "epoch": state["epoch"], "metrics": state["metrics"]}
    atomic_write(dest / MODEL_FILE, lambda tmp: torch.save(state["model"], tmp))
    (dest / INT8_FILE).unlink(missing_ok=True)
    _write_record(dest, record)
    return dest


def load_model(path: str | os.PathLike, *, int8: bool = False) -> nn.Module:
    """The trained model from an export or checkpoint folder, rebuilt on the CPU in eval mode.

    `int8=True`: the int8 copy `quantize_export` wrote (`model_int8.pt`, format 1 or 2), CPU only.
    """
    record, weights = read_model(path)
    model = build_model(record["trainable"], record["model_config"], tuple(record["input_shape"]),
                        record["n_classes"])
    if not int8:
        model.load_state_dict(weights)
        return model.eval()
    file = Path(path) / INT8_FILE
    if not file.is_file():
        raise FileNotFoundError(f"no {INT8_FILE} in {path}; write it with quantize_export({str(path)!r})")
    with quiet():  # quantised tensors load through storage code torch marks deprecated
        saved = torch.load(file, map_location="cpu", weights_only=True)
    if saved.get("format") not in READABLE_FORMATS:
        raise ValueError(f"{file}: unsupported int8 format {saved.get('format')!r} (expected one of "
                         f"{', '.join(map(str, READABLE_FORMATS))})")
    try:
        return restore(model, saved, tuple(record["input_shape"]))
    except (RuntimeError, KeyError) as exc:
        raise ValueError(f"{INT8_FILE} does not match the model its model.json describes: {exc}") from None


def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, split: str = "test") -> dict[str, float | int]:
    """Score a checkpoint (or export) on `split`, rebuilt from its saved data spec and seed (the same
    split the trial trained on). Keys are prefixed by the split: `test_accuracy`, `test_loss`, `test_samples`."""
    record, _ = read_model(checkpoint_dir)
    x, y = _split(record, split)
    loss, accuracy = evaluate(load_model(checkpoint_dir), x, y)
    return {f"{split}_accuracy": accuracy, f"{split}_loss": loss, f"{split}_samples": len(y)}


def quantize_export(export_dir: str | os.PathLike, *, split: str = "test") -> dict[str, Any]:
    """Write `export_dir/model_int8.pt`: an int8 copy of the exported model (see `trainables.quantize`).

    A network with convolutions (a cnn, or each cnn of an ensemble or of k folds) is quantised statically,
    convolutions included, with activation scales calibrated on a few hundred rows of the trial's training
    split; Linear, LSTM and GRU layers elsewhere (mlp, rnn) dynamically. The accuracy cost is measured on
    `split` of the trial's own data split, on the CPU, and returned with the two files' sizes:
    `{"quantized", "accuracy_before", "accuracy_after", "loss_before", "loss_after", "size_bytes_before",
    "size_bytes_after", "split", "samples", "quantized_modules"}` (also stored under "int8" in `model.json`);
    `quantized_modules` names the float model's layers that are int8 in the copy. A trial with
    `export.quantize` reports the same copy's `int8_val_accuracy` and `int8_bytes` (`loop.int8_scores`).
    The file holds tensors only and loads with `weights_only=True` (see `load_model(int8=True)`).
    """
    folder = Path(export_dir)
    if not (folder / RECORD_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not an export folder (no {RECORD_FILE}); run export_best first")
    record, _ = read_model(folder)
    model = load_model(folder)
    data = _dataset(record)
    copy = quantize(model, data.x_train)
    names = quantized_layers(model, copy.model)
    if not names:
        raise ValueError(f"{folder}: the {record['trainable']} model has no {', '.join(DYNAMIC)} or conv layer to "
                         "quantise")
    x, y = _split(record, split, data)
    loss_before, accuracy_before = evaluate(model, x, y)
    with quiet():
        loss_after, accuracy_after = evaluate(copy.model, x, y)
        payload = copy.payload()
        atomic_write(folder / INT8_FILE, lambda tmp: torch.save(payload, tmp))
    result = {
        "quantized": True, "accuracy_before": accuracy_before, "accuracy_after": accuracy_after,
        "loss_before": loss_before, "loss_after": loss_after,
        "size_bytes_before": (folder / MODEL_FILE).stat().st_size,
        "size_bytes_after": (folder / INT8_FILE).stat().st_size,
        "split": split, "samples": len(y), "quantized_modules": names,
    }
    _write_record(folder, {**json.loads((folder / RECORD_FILE).read_text()), "int8": result})
    return result


def _dataset(record: dict[str, Any]) -> Dataset:
    """The data the model was trained on, rebuilt from its record: same spec, seed and, for text, encoding
    (`data_options`: vocab_size, max_len), so the vocabulary fitted on training comes out equal."""
    options = record.get("data_options")
    if options is None:  # a record written before `data_options`: the rnn knobs sit in model_config
        options = {key: record["model_config"][key] for key in TEXT_ENCODING if key in record["model_config"]}
    return load_dataset(record["data"], record["seed"], **options)


def _split(record: dict[str, Any], split: str, data: Dataset | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`split` of the model's data (`data`, or rebuilt from `record`)."""
    x, y = (data or _dataset(record)).split(split)
    require(len(y) > 0, f"{split} split", 0, "is empty (is its fraction 0?)")
    return x, y


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    atomic_write(folder / RECORD_FILE, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
