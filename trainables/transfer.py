"""Transfer learning for the built-ins: start a model from another one's weights, and freeze its features.

`init_from` names the source: an experiment (its `best/` in the storage folder), an export folder, a
checkpoint folder or a `.pt` file. Tensors are matched by name AND shape, so the source may be another
class count (a 5-class head is skipped for a 10-class model) or even another family (nothing but what fits
is taken). Every family splits into `features` and `classifier`, which is what `freeze_features` relies on;
the head is also left out when the source was trained on other labels (`apply_init_from(data=...)`).

Order at model build (the loop does this):

    model = build_model(...)
    if knobs.init_from and start_checkpoint is None:   # a resumed trial's checkpoint already holds the weights
        apply_init_from(model, knobs.init_from, storage=context.storage, data=context.data)
    if knobs.freeze_features:
        freeze_features(model)                          # also on resume: requires_grad is not checkpointed
    optimizer = make_optimizer(..., trainable_parameters(model), ...)
    ...
    model.train(); keep_frozen_in_eval(model)           # every epoch, after each model.train()
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trainables.checkpoint import CHECKPOINT_FILE, MODEL_FILE, RECORD_FILE, read_model
from trainables.validation import did_you_mean

# the export's file names, repeated here (not imported from export.py) so that export can import this module
BEST_FOLDER = "best"
HEAD = "classifier"
#: the `data:` keys that decide what a model's outputs mean
LABEL_KEYS = ("name", "path", "label_column", "classes")

#: batch-norm layers: they keep running statistics that `requires_grad_(False)` does not stop
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def resolve_source(init_from: str, *, storage: str | None) -> Path:
    """The folder or `.pt` file `init_from` names.

    A value that looks like a path (has a separator, starts with `.` or `~`, or ends in `.pt`) is a path,
    relative to the current folder; a bare name is an experiment in `storage` (its `best/`), or, when no
    such experiment exists, a file or folder of that name in the current folder. Raises ValueError naming
    what was looked for and where.
    """
    if not isinstance(init_from, str) or not init_from.strip():
        raise ValueError(f"init_from: must be an experiment name or a path to a model, got {init_from!r}")
    path = Path(init_from).expanduser()
    looks_like_path = (os.sep in init_from or "/" in init_from or init_from.startswith((".", "~"))
                       or path.suffix == ".pt")
    if looks_like_path:
        if not path.exists():
            raise ValueError(f"init_from: no such file or folder {path.absolute()}")
        return _checked(path.absolute(), init_from)

    experiment = _experiment_best(init_from, storage)
    if experiment is not None:
        return _checked(experiment, init_from)
    if path.exists():
        return _checked(path.absolute(), init_from)
    here = f"no file or folder {init_from!r} in the current folder {Path.cwd()}"
    if storage is None:
        raise ValueError(f"init_from: {init_from!r} is not an experiment name that can be looked up (no storage "
                         f"folder was given) and {here}")
    root = _local_storage(storage, init_from)
    known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise ValueError(f"init_from: no experiment {init_from!r} in storage {root} (looked for "
                     f"{root / init_from / BEST_FOLDER}){did_you_mean(init_from, known)}, and {here}")


def apply_init_from(model: nn.Module, init_from: str, *, storage: str | None,
                    data: Mapping[str, Any] | None = None) -> dict[str, list[str]]:
    """Copy into `model` every tensor of the source's state_dict whose name and shape match; keep the rest.

    `data`: the `data:` spec the model will train on. When it is given and the source's record shows it
    was trained on other labels (another data set, or other `classes`), the `classifier` head is skipped
    even where its shape fits: its outputs would mean other classes, and fine-tuning from such a head does
    worse than from a fresh one (digits 0-4 -> 5-9). A bare `.pt` without a record is matched by shape only.

    Returns `{"loaded": [names], "skipped": ["name: reason"]}` over the model's state_dict entries (reasons:
    missing in the source, the two shapes, or other labels). Raises ValueError when no parameter is loaded:
    the source is then almost certainly the wrong one, and silently training from scratch would hide that.
    """
    source = resolve_source(init_from, storage=storage)
    record, weights = read_source(source)
    other_labels = _other_labels(record, data)
    own = model.state_dict()
    matching: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for name, tensor in own.items():
        theirs = weights.get(name)
        if theirs is None:
            skipped.append(f"{name}: missing in the source")
        elif theirs.shape != tensor.shape:
            skipped.append(f"{name}: shape {list(tensor.shape)} in the model vs {list(theirs.shape)} in the source")
        elif other_labels is not None and _is_head(name):
            skipped.append(f"{name}: the source's head was trained on other labels ({other_labels})")
        else:
            matching[name] = theirs
    parameters = {name for name, _ in model.named_parameters()}
    if not parameters & matching.keys():
        raise ValueError(f"init_from {init_from!r} ({source}): no parameter of this {type(model).__name__} "
                         f"matches the source by name and shape (the model has "
                         f"{_sample(own)}; the source has {_sample(weights)}); is it the right source?")
    model.load_state_dict(matching, strict=False)
    return {"loaded": list(matching), "skipped": skipped}


def read_source(source: Path) -> tuple[dict[str, Any] | None, dict[str, torch.Tensor]]:
    """`(record or None, float state_dict)` of what `resolve_source` returned, read once: an export or
    checkpoint folder (through `checkpoint.read_model`), a folder with only `model.pt`, or a `.pt` file
    (its record is the `model.json` or checkpoint beside it, if any)."""
    if source.is_dir():
        if (source / MODEL_FILE).is_file() and not (source / RECORD_FILE).is_file():
            return None, _state_dict(torch.load(source / MODEL_FILE, map_location="cpu", weights_only=True),
                                     source / MODEL_FILE)
        record, weights = read_model(source)
        return record, _state_dict(weights, source)
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle of arbitrary objects, or not a torch file at all
        raise ValueError(f"init_from: {source} is not a weights file torch can load safely "
                         f"(weights_only): {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from None
    if isinstance(loaded, Mapping) and loaded.get("quantized"):
        raise ValueError(f"init_from: {source} is an int8 export; start from the float {MODEL_FILE} beside it")
    record = None
    if isinstance(loaded, Mapping) and "format" in loaded and isinstance(loaded.get("model"), Mapping):
        record, loaded = loaded, loaded["model"]  # a checkpoint.pt named directly
    elif source.name == MODEL_FILE and (source.parent / RECORD_FILE).is_file():
        record = json.loads((source.parent / RECORD_FILE).read_text())
    return record, _state_dict(loaded, source)


def freeze_features(model: nn.Module) -> None:
    """Stop gradients into every `features` part of `model`, so that only the classifier head trains.

    Built-in families have `features` and `classifier`; a model holding several (an ensemble's members)
    has each one's `features` frozen. Raises ValueError when the model has no `features`, or when freezing
    leaves nothing to train. Batch-norm statistics are not parameters: see `keep_frozen_in_eval`.
    """
    parts = _feature_parts(model)
    if not parts:
        raise ValueError(f"freeze_features: {type(model).__name__} has no `features` part to freeze (built-in "
                         "families are `features` + `classifier`)")
    for part in parts:
        part.requires_grad_(False)
    if not trainable_parameters(model):
        raise ValueError(f"freeze_features: {type(model).__name__} has nothing left to train once its "
                         "features are frozen")


def keep_frozen_in_eval(model: nn.Module) -> None:
    """Put the batch-norm layers of frozen `features` in eval mode; call it after every `model.train()`.

    `requires_grad_(False)` stops the weights, but a batch-norm layer in training mode still normalises
    with the batch's statistics and updates its running ones: the frozen features would drift. As in
    Keras' `trainable = False`, they run in inference mode instead. Dropout is left alone (it still
    regularises the head). A no-op when nothing is frozen, so the loop may call it unconditionally.
    """
    for part in _feature_parts(model):
        if any(p.requires_grad for p in part.parameters()):
            continue
        for module in part.modules():
            if isinstance(module, _BATCH_NORMS):
                module.eval()


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """What the optimizer (and the l1/l2 penalty) should see: the parameters still requiring gradients."""
    return [p for p in model.parameters() if p.requires_grad]


def _is_head(name: str) -> bool:
    return name.startswith(f"{HEAD}.") or f".{HEAD}." in name


def _other_labels(record: Mapping[str, Any] | None, data: Mapping[str, Any] | None) -> str | None:
    """How the source's labels differ from `data`'s ("digits classes [0, 1] vs digits classes [2, 3]"),
    or None when they are the same or cannot be told."""
    if data is None or record is None or not isinstance(record.get("data"), Mapping):
        return None

    def labels(spec: Mapping[str, Any]) -> dict[str, Any]:
        values = {key: spec.get(key) for key in LABEL_KEYS}
        if values["classes"] is not None:
            values["classes"] = [c if isinstance(c, str) else int(c) for c in values["classes"]]
        return values

    def describe(values: Mapping[str, Any]) -> str:
        classes = "all classes" if values["classes"] is None else f"classes {values['classes']}"
        return f"{values['name'] or values['path']} {classes}"

    theirs, ours = labels(record["data"]), labels(data)
    return None if theirs == ours else f"{describe(theirs)} vs {describe(ours)}"


def _feature_parts(model: nn.Module) -> list[nn.Module]:
    return [module for name, module in model.named_modules()
            if name == "features" or name.endswith(".features")]


def _experiment_best(name: str, storage: str | None) -> Path | None:
    """`{storage}/{name}/best` when the experiment exists; a ValueError when it exists without `best/`."""
    if storage is None:
        return None
    if "://" in storage:
        return _download_best(storage, name)
    folder = _local_storage(storage, name) / name
    if not folder.is_dir():
        return None
    best = folder / BEST_FOLDER
    if not best.is_dir():
        raise ValueError(f"init_from: experiment {name!r} in {folder.parent} has no {BEST_FOLDER}/ folder yet "
                         f"(looked for {best}); it is written when the experiment finishes")
    return best


def _local_storage(storage: str, init_from: str) -> Path:
    if storage.startswith("file://"):
        storage = storage[len("file://"):]
    return Path(storage).expanduser().absolute()


def _download_best(storage: str, name: str) -> Path | None:
    """`{storage}/{name}/best` of a URI storage (s3://, gs://), copied once into a local cache folder that
    every trial on this node then reads; None when the experiment is not there."""
    import hashlib
    import tempfile

    import pyarrow.fs

    base, _, query = storage.partition("?")
    uri = f"{base.rstrip('/')}/{name}/{BEST_FOLDER}" + (f"?{query}" if query else "")
    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(uri)
        found, experiment = filesystem.get_file_info([path, path.rsplit("/", 1)[0]])
    except (OSError, ValueError) as exc:  # unreachable, no credentials, a bad URI
        raise ValueError(f"init_from: cannot look up experiment {name!r} in storage {storage}: {exc}") from None
    if found.type != pyarrow.fs.FileType.Directory:
        if experiment.type == pyarrow.fs.FileType.Directory:
            raise ValueError(f"init_from: experiment {name!r} in {storage} has no {BEST_FOLDER}/ folder yet "
                             f"(looked for {uri}); it is written when the experiment finishes")
        return None
    cache = Path(tempfile.gettempdir()) / "tunerd-init-from" / hashlib.sha1(uri.encode()).hexdigest()[:16]
    if not (cache / MODEL_FILE).is_file():
        cache.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="download-", dir=cache.parent))
        pyarrow.fs.copy_files(path, str(staging), source_filesystem=filesystem,
                              destination_filesystem=pyarrow.fs.LocalFileSystem())
        try:
            staging.rename(cache)  # atomic: concurrent trials never read a half-copied model
        except OSError:  # another trial won the race
            shutil.rmtree(staging, ignore_errors=True)
    return cache


def _checked(path: Path, init_from: str) -> Path:
    """`path` when it holds a model tunerd can read, else a ValueError saying what was looked for."""
    if path.is_dir():
        if (path / MODEL_FILE).is_file() or (path / CHECKPOINT_FILE).is_file():
            return path
        raise ValueError(f"init_from {init_from!r}: folder {path} holds no model (looked for {MODEL_FILE} with "
                         f"{RECORD_FILE}, an export, or {CHECKPOINT_FILE}, a checkpoint)")
    if path.suffix != ".pt":
        raise ValueError(f"init_from {init_from!r}: {path} is a file but not a .pt weights file")
    return path


def _state_dict(loaded: Any, where: Path) -> dict[str, torch.Tensor]:
    ok = isinstance(loaded, Mapping) and loaded and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items())
    if not ok:
        raise ValueError(f"init_from: {where} holds no state_dict (a mapping of names to tensors)")
    return dict(loaded)


def _sample(weights: Mapping[str, torch.Tensor], count: int = 3) -> str:
    names = [f"{name} {list(t.shape)}" for name, t in list(weights.items())[:count]]
    more = len(weights) - count
    return ", ".join(names) + (f", ... ({more} more)" if more > 0 else "")
