"""The best trial's model, out of Ray's storage: export, reload, score on a held-out split, and quantise.

An export folder holds `model.pt` (the float state_dict), `model.json` (the model record, epoch, metrics
and, for text, the vocabulary) and, after `quantize_export`, `model_int8.pt`.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainables.checkpoint import MODEL_FILE, RECORD_FILE, RECORD_KEYS, load_checkpoint, read_model
from trainables.data import load_dataset
from trainables.files import atomic_write
from trainables.loop import evaluate
from trainables.models import build_model
from trainables.validation import require

INT8_FILE = "model_int8.pt"
INT8_FORMAT = 1
#: record entries copied to `model.json` when a checkpoint has them (a text model's token -> id map)
OPTIONAL_RECORD_KEYS = ("vocab",)
#: what dynamic int8 quantisation replaces: layers that multiply by a weight matrix. Conv layers have no
#: dynamic int8 kernel (they need static quantisation, with calibration data), so they stay float.
QUANTIZABLE: dict[str, type[nn.Module]] = {"Linear": nn.Linear, "LSTM": nn.LSTM, "GRU": nn.GRU}
_RECURRENT = (nn.LSTM, nn.GRU)
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

    `int8=True`: the dynamically quantised copy `quantize_export` wrote (`model_int8.pt`), CPU only.
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
    with _quiet_quantization():  # quantised tensors load through storage code torch marks deprecated
        saved = torch.load(file, map_location="cpu", weights_only=True)
    if saved.get("format") != INT8_FORMAT:
        raise ValueError(f"{file}: unsupported int8 format {saved.get('format')!r} (expected {INT8_FORMAT})")
    quantized = _quantize(model.eval(), [QUANTIZABLE[name] for name in saved["module_types"]])
    _load_int8(quantized, saved)
    return quantized.eval()


def evaluate_checkpoint(checkpoint_dir: str | os.PathLike, split: str = "test") -> dict[str, float | int]:
    """Score a checkpoint (or export) on `split`, rebuilt from its saved data spec and seed (the same
    split the trial trained on). Keys are prefixed by the split: `test_accuracy`, `test_loss`, `test_samples`."""
    record, _ = read_model(checkpoint_dir)
    x, y = _split(record, split)
    loss, accuracy = evaluate(load_model(checkpoint_dir), x, y)
    return {f"{split}_accuracy": accuracy, f"{split}_loss": loss, f"{split}_samples": len(y)}


def quantize_export(export_dir: str | os.PathLike, *, split: str = "test") -> dict[str, Any]:
    """Write `export_dir/model_int8.pt`: a dynamically quantised int8 copy of the exported model.

    Dynamic quantisation stores the weights of `nn.Linear`, `nn.LSTM` and `nn.GRU` as int8 and quantises
    activations on the fly, so it needs no calibration data; it runs on the CPU only. Conv layers cannot be
    quantised dynamically and stay float (a cnn gains only on its dense layers). The accuracy cost is
    measured on `split` of the trial's own data split, on the CPU, and returned with the two files' sizes:
    `{"quantized", "accuracy_before", "accuracy_after", "loss_before", "loss_after", "size_bytes_before",
    "size_bytes_after", "split", "samples", "quantized_modules"}` (also stored under "int8" in `model.json`).

    It uses `torch.ao.quantization.quantize_dynamic`, which torch 2.13 still ships but marks deprecated
    in favour of the separate `torchao` package; its warnings are silenced here, as users can do nothing
    about them. The file holds tensors only and loads with `weights_only=True` (see `load_model(int8=True)`).
    """
    folder = Path(export_dir)
    if not (folder / RECORD_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not an export folder (no {RECORD_FILE}); run export_best first")
    record, _ = read_model(folder)
    model = load_model(folder)
    types = list(QUANTIZABLE.values())
    quantized = _quantize(model, types)
    after = dict(quantized.named_modules())
    names = [name for name, before in model.named_modules() if type(after[name]) is not type(before)]
    if not names:
        raise ValueError(f"{folder}: the {record['trainable']} model has no {', '.join(QUANTIZABLE)} layer to "
                         "quantise")
    x, y = _split(record, split)
    loss_before, accuracy_before = evaluate(model, x, y)
    with _quiet_quantization():
        loss_after, accuracy_after = evaluate(quantized, x, y)
    payload = _int8_payload(model, quantized, list(QUANTIZABLE))
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


def _split(record: dict[str, Any], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`split` of the data the model was trained on, rebuilt from its record: same spec, seed and, for text,
    encoding (`data_options`: vocab_size, max_len), so the vocabulary fitted on training comes out equal."""
    options = record.get("data_options")
    if options is None:  # a record written before `data_options`: the rnn knobs sit in model_config
        options = {key: record["model_config"][key] for key in TEXT_ENCODING if key in record["model_config"]}
    x, y = load_dataset(record["data"], record["seed"], **options).split(split)
    require(len(y) > 0, f"{split} split", 0, "is empty (is its fraction 0?)")
    return x, y


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    atomic_write(folder / RECORD_FILE, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))


@contextmanager
def _quiet_quantization() -> Iterator[None]:
    """Silence torch's deprecation notices for eager-mode quantisation (see `quantize_export`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=re.escape("torch.ao.quantization is deprecated"))
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
        yield


def _quantize(model: nn.Module, types: list[type[nn.Module]]) -> nn.Module:
    """A dynamically quantised (qint8) copy of the eval-mode `model`; `model` itself is left float."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:  # a future torch without eager-mode quantisation
        raise RuntimeError(f"int8 export needs torch.ao.quantization.quantize_dynamic, which torch "
                           f"{torch.__version__} does not have") from exc
    with _quiet_quantization():
        return quantize_dynamic(model.eval(), set(types), dtype=torch.qint8, inplace=False)


def _recurrent_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, _RECURRENT)]


def _int8_payload(model: nn.Module, quantized: nn.Module, module_types: list[str]) -> dict[str, Any]:
    """What `model_int8.pt` holds: plain and quantised tensors only, so it loads with `weights_only=True`.

    A quantised linear layer's state is tensors already; a quantised LSTM/GRU keeps its weights in
    TorchScript objects that `weights_only` refuses, so those travel as their int8 weight tensors
    (`get_weight()` / `get_bias()`) and are packed again by `set_weight_bias` on load.
    """
    modules = dict(quantized.named_modules())
    recurrent = {name: {**modules[name].get_weight(), **modules[name].get_bias()}
                 for name in _recurrent_names(model)}
    state = quantized.state_dict()  # an OrderedDict whose `_metadata` (layout versions) load_state_dict needs
    for key in [key for key in state if any(key.startswith(f"{name}.") for name in recurrent)]:
        del state[key]
    return {"format": INT8_FORMAT, "quantized": "qint8", "module_types": module_types,
            "state_dict": state, "recurrent": recurrent}


def _load_int8(quantized: nn.Module, saved: dict[str, Any]) -> None:
    """Restore `_int8_payload` into a freshly quantised copy of the same model."""
    modules = dict(quantized.named_modules())
    state = saved["state_dict"]  # keeps its `_metadata`
    with _quiet_quantization():
        for name, weights in saved["recurrent"].items():
            modules[name].set_weight_bias(weights)
        # the recurrent layers' packed objects, rebuilt just above, fill the entries the file left out
        state.update({key: value for key, value in quantized.state_dict().items()
                      if any(key.startswith(f"{name}.") for name in saved["recurrent"])})
        try:
            quantized.load_state_dict(state)
        except (RuntimeError, KeyError) as exc:
            raise ValueError(f"{INT8_FILE} does not match the model its model.json describes: {exc}") from None
