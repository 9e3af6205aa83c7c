"""The checkpoint file: its layout, atomic writing, and the RNG states that make a resume exact.

`checkpoint.pt` (in the folder Ray Tune persists) is one `torch.save`d dict:

    format          layout version (2; version 1, one optimizer under `optimizer`, still loads)
    trainable, knobs, model_config, input_shape, n_classes, data, seed, data_options
                    the model record: everything needed to rebuild the model and its data split
                    (`build_model(trainable, model_config, input_shape, n_classes)`, then
                    `load_dataset(data, seed, **data_options)`); see "The model record" below
    vocab           text only: the token of each id (the plain split's vocabulary), for prediction
    epoch           last finished epoch (1-based)
    planned_epochs  epochs this trial runs unless stopped early
    metrics         what was reported for `epoch`
    best            {"metric", "mode", "value", "epoch"}: best-so-far, for early stopping
    model           the predictor's state_dict, which holds every learner's model (see below)
    learners        one entry per learner, in the order of `Ensemble.members` (folds first, then members):
                    {"optimizer": state_dict, "sample_weight": Tensor (boosting: each training row's
                    weight, mean 1) or None, "scaler": the mixed-precision GradScaler's state_dict ({}
                    without `amp`; absent from checkpoints written before `amp`)}
    scheduler       {"lr_schedule", "base_lr", "planned_epochs"}: the schedule is a pure function of the
                    epoch (see `optim.lr_factor`), so these and `epoch` are its whole state
    rng             {"torch", "cuda", "shuffle", "augment"}: global CPU / CUDA generators (dropout, weight
                    init), the batch-order generator, and the augmentation generator (on the data's device)
                    as {"device": "cpu" | "cuda", "state": ByteTensor}
    prune           {"amount", "start", "last"}: the pruning schedule (`pruning.PruneSchedule`: early stopping
                    may have moved it forward), or None without the `prune` knob (absent before it)

The model record. `model_config` is flat: the family's knobs (cnn, mlp, rnn fields; an ensemble's base's),
plus for `trainable: ensemble` its `method`, `members`, `base`, `sample_fraction`, plus `folds: k` for a
k-fold cross-validated trial (absent otherwise). `build_model` turns it into the predictor:

    cnn / mlp / rnn         the family's module: `features.*`, `classifier.*`; an mlp with `select_features`
                            or `pca` also `feature_map.columns` / `.mean` / `.components` (its training-split fit)
    ensemble                `Ensemble`: `members.{m}.*` (member m's model) and `weights` (M,): 1 each for
                            bagging, SAMME's alphas for boosting; it predicts log(sum_m w_m p_m / sum_m w_m)
    folds: k (either above) `Ensemble` of k `Recoded`: `members.{f}.model.*` (fold f's model or ensemble),
                            `members.{f}.recode.*` (the map from the plain split's input encoding to fold
                            f's: `scale`/`shift` for images and tabular data, `ids` for text) and `weights`
                            (k ones: the fold models' probabilities are averaged)

`data_options` holds the knobs that shape the data too (`vocab_size`, `max_len` for an rnn; else empty).
A multi-worker trial's checkpoint is rank 0's and has the same layout: every rank holds the same model,
optimizer and RNG states, so it resumes with one worker or many.
Everything in the file is a tensor or a plain Python value, so it loads with `weights_only=True`.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from trainables.files import atomic_write
from trainables.knobs import Knobs
from trainables.models import model_config

CHECKPOINT_FILE = "checkpoint.pt"
#: an exported model (`best/`): the state_dict and its record
MODEL_FILE = "model.pt"
RECORD_FILE = "model.json"
FORMAT = 2
#: keys of the model record, shared by checkpoints and exported models (`model.json`)
RECORD_KEYS = ("trainable", "knobs", "model_config", "input_shape", "n_classes", "data", "seed", "data_options")


def model_record(trainable: str, knobs: Knobs, input_shape: tuple[int, ...], n_classes: int,
                 data: Mapping[str, Any], seed: int, *, folds: int = 0) -> dict[str, Any]:
    """What rebuilds a trained model and its data split, in JSON-safe types."""
    record = {"trainable": trainable, "knobs": knobs.as_dict(),
              "model_config": model_config(knobs.model, knobs.ensemble, folds),
              "input_shape": list(input_shape), "n_classes": n_classes, "data": dict(data), "seed": seed,
              "data_options": knobs.model.data_options()}
    return json.loads(json.dumps(record))  # plain types only (a YAML loader's mappings, tuples -> lists)


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
    if state.get("format") == 1:  # one model and its optimizer, written before ensembles and folds
        state.setdefault("data_options", {})
        state["learners"] = [{"optimizer": state.pop("optimizer"), "sample_weight": None}]
        state["format"] = FORMAT
    if state.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format {state.get('format')!r} (expected {FORMAT})")
    return state


def rng_state(shuffle: torch.Generator, augment: torch.Generator) -> dict[str, Any]:
    """Every random stream training draws from: dropout (global CPU/CUDA), batch order (`shuffle`) and
    augmentation (`augment`, on the data's device)."""
    return {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "augment": {"device": augment.device.type, "state": augment.get_state()}}


def restore_rng(state: Mapping[str, Any], shuffle: torch.Generator, augment: torch.Generator) -> None:
    """Put the generators back as saved. A generator saved on another kind of device (a CPU checkpoint
    resumed on a GPU) cannot be restored; it keeps its seeded state, so that resume is not exact."""
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    saved = state.get("augment")
    if saved is not None and saved["device"] == augment.device.type:
        augment.set_state(saved["state"])


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
