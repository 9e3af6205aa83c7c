"""Knobs: a trial's config turned into the loop's and the model's typed settings.

Every knob's name, type, default and rule is a field of `TrainingConfig` (shared by all built-ins), of
`ModelConfig` (architecture knobs every family honours) or of the family's config. This module only merges
nested groups, rejects unknown names and splits the knobs between the loop and the model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from trainables.models import ACTIVATIONS, FAMILIES, INITS, ModelConfig
from trainables.optim import LR_SCHEDULES, OPTIMIZERS
from trainables.validation import did_you_mean, from_knobs, require, require_choice

#: allowed values of the enum knobs, for the spec checker and the docs
KNOB_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": tuple(OPTIMIZERS),
    "init": tuple(INITS),
    "activation": tuple(ACTIVATIONS),
    "lr_schedule": tuple(LR_SCHEDULES),
}

#: knobs the spec promises that later work will implement: named as such instead of "unknown"
PLANNED_KNOBS: dict[str, str] = {"init_from": "transfer learning", "freeze_features": "transfer learning"}


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """The knobs of the shared loop (optimisation, regularisation by penalty, stopping)."""

    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int | None = None
    l1: float = 0.0
    l2: float = 0.0
    grad_clip: float = 0.0
    lr_schedule: str = "none"
    early_stopping_patience: int = 0
    augment: float = 0.0  # accepted so spaces can name it; data augmentation is not implemented yet

    def __post_init__(self) -> None:
        require(self.lr > 0, "lr", self.lr, "must be > 0")
        require_choice("optimizer", self.optimizer, OPTIMIZERS)
        require(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "must be in [0, 1)")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "must be >= 1")
        require(self.epochs is None or self.epochs >= 1, "epochs", self.epochs, "must be >= 1")
        require(self.l1 >= 0, "l1", self.l1, "must be >= 0")
        require(self.l2 >= 0, "l2", self.l2, "must be >= 0")
        require(self.grad_clip >= 0, "grad_clip", self.grad_clip, "must be >= 0 (0 = off)")
        require_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        require(self.early_stopping_patience >= 0, "early_stopping_patience", self.early_stopping_patience,
                "must be >= 0 (0 = off)")
        require(self.augment >= 0, "augment", self.augment, "must be >= 0 (0 = off)")

    def planned_epochs(self, max_epochs: int) -> int:
        """`epochs` when the space sets it, else the experiment's cap, and never more than the cap."""
        return min(self.epochs or max_epochs, max_epochs)


@dataclass(frozen=True)
class Knobs:
    """A trial's knobs, parsed: what the loop needs, what builds the model, and all values with defaults."""

    training: TrainingConfig
    model: ModelConfig

    def as_dict(self) -> dict[str, Any]:
        """Every knob's effective value, defaults included (what a checkpoint and an export record)."""
        return {**asdict(self.training), **asdict(self.model)}


def _family_config(trainable: str) -> type[ModelConfig]:
    if trainable not in FAMILIES:
        raise ValueError(f"unknown built-in trainable {trainable!r}{did_you_mean(trainable, FAMILIES)}; "
                         f"built-ins are {', '.join(FAMILIES)}")
    return FAMILIES[trainable].config


def knob_names(trainable: str) -> frozenset[str]:
    """The knobs built-in `trainable` accepts: the loop's plus its model family's."""
    return frozenset(f.name for f in (*fields(TrainingConfig), *fields(_family_config(trainable))))


def flatten_knobs(config: Mapping[str, Any]) -> dict[str, Any]:
    """Merge nested groups into one flat mapping.

    A group, or the mapping a conditional `choice` picked, only organises the space; the same knob in two
    places would be ambiguous, hence a ValueError naming both paths.
    """
    flat: dict[str, Any] = {}
    paths: dict[str, str] = {}

    def visit(group: Mapping[str, Any], prefix: str) -> None:
        for key, value in group.items():
            path = f"{prefix}{key}"
            if isinstance(value, Mapping):
                visit(value, f"{path}.")
            elif key in flat:
                raise ValueError(f"knob {key!r} is set twice: at {paths[key]!r} and at {path!r}")
            else:
                flat[key], paths[key] = value, path

    visit(config, "")
    return flat


def parse_knobs(trainable: str, config: Mapping[str, Any]) -> Knobs:
    """Validate a trial config for built-in `trainable` and split it; errors name the knob."""
    family_config = _family_config(trainable)
    flat = flatten_knobs(config)
    known = knob_names(trainable)
    for name in flat:
        if name in PLANNED_KNOBS:
            raise ValueError(f"knob {name!r} ({PLANNED_KNOBS[name]}) is not supported yet")
        if name not in known:
            raise ValueError(f"unknown knob {name!r} for trainable {trainable!r}{did_you_mean(name, known)}")
    knobs = Knobs(training=from_knobs(TrainingConfig, flat), model=from_knobs(family_config, flat))
    require(not (knobs.model.batch_norm and knobs.training.batch_size == 1), "batch_size", 1,
            "must be > 1 with batch_norm (batch statistics need two samples)")
    return knobs
