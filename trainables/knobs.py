"""Knobs: a trial's config turned into the loop's and the model's typed settings.

Every knob's name, type, default and rule is a field of `TrainingConfig` (shared by all built-ins), of
`ModelConfig` (architecture knobs every family honours), of the family's config, or, for `ensemble`, of
`EnsembleConfig`. This module only merges nested groups, rejects unknown names and splits the knobs
between the loop and the model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from trainables.models import (ACTIVATIONS, BASES, CELLS, ENSEMBLE, FAMILIES, INITS, METHODS, EnsembleConfig,
                               ModelConfig, family)
from trainables.optim import LR_SCHEDULES, OPTIMIZERS
from trainables.validation import did_you_mean, from_knobs, require, require_choice

#: allowed values of the enum knobs, for the spec checker and the docs
KNOB_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": tuple(OPTIMIZERS),
    "init": tuple(INITS),
    "activation": tuple(ACTIVATIONS),
    "lr_schedule": tuple(LR_SCHEDULES),
    "cell": tuple(CELLS),
    "method": METHODS,
    "base": BASES,
}


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
    #: strength of `trainables.augment.augment_batch`, applied to every training batch (0 = off)
    augment: float = 0.0
    #: transfer learning: an experiment name, export or checkpoint folder whose matching tensors start the model
    init_from: str | None = None
    #: train only the classifier head (`features` frozen, their batch norm in inference mode); meant for
    #: `init_from`, without which the features stay as randomly initialised (a random-features baseline)
    freeze_features: bool = False
    #: mixed precision (float16 autocast + GradScaler): None (the default) = on when the trial trains on
    #: CUDA; false = off; on the CPU it has no effect either way (`optim.amp_enabled`)
    amp: bool | None = None

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
        require(self.init_from is None or self.init_from.strip() != "", "init_from", self.init_from,
                "must name an experiment or a model folder (or be null)")

    def planned_epochs(self, max_epochs: int) -> int:
        """`epochs` when the space sets it, else the experiment's cap, and never more than the cap."""
        return min(self.epochs or max_epochs, max_epochs)


@dataclass(frozen=True)
class Knobs:
    """A trial's knobs, parsed: what the loop needs, what builds each model, and all values with defaults."""

    training: TrainingConfig
    #: the architecture of each model the trial trains (an ensemble's: every member's)
    model: ModelConfig
    #: that model's family: the trainable, or an ensemble's base
    family: str
    ensemble: EnsembleConfig | None = None

    def as_dict(self) -> dict[str, Any]:
        """Every knob's effective value, defaults included (what a checkpoint and an export record)."""
        ensemble = asdict(self.ensemble) if self.ensemble is not None else {}
        return {**asdict(self.training), **ensemble, **asdict(self.model)}


def _check_trainable(trainable: str) -> None:
    if trainable != ENSEMBLE and trainable not in FAMILIES:
        known = (*FAMILIES, ENSEMBLE)
        raise ValueError(f"unknown built-in trainable {trainable!r}{did_you_mean(trainable, known)}; "
                         f"built-ins are {', '.join(known)}")


def _names(*configs: type) -> frozenset[str]:
    return frozenset(f.name for config in configs for f in fields(config))


def knob_names(trainable: str) -> frozenset[str]:
    """The knobs built-in `trainable` accepts: the loop's plus its model family's.

    For `ensemble`: the loop's, the ensemble's own and those of EVERY family it may use as `base`, because
    the base may itself be searched (`base: {choice: [cnn, mlp]}`) and a spec checker cannot know it before
    sampling. Whether the knobs fit the chosen base is checked when the trial starts (`parse_knobs`).
    """
    _check_trainable(trainable)
    if trainable == ENSEMBLE:
        return _names(TrainingConfig, EnsembleConfig, *(f.config for f in FAMILIES.values()))
    return _names(TrainingConfig, FAMILIES[trainable].config)


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
    flat = flatten_knobs(config)
    known = knob_names(trainable)
    for name in flat:
        if name not in known:
            raise ValueError(f"unknown knob {name!r} for trainable {trainable!r}{did_you_mean(name, known)}")
    ensemble = from_knobs(EnsembleConfig, flat) if trainable == ENSEMBLE else None
    family_name = ensemble.base if ensemble is not None else trainable
    if ensemble is not None:
        fits = _names(TrainingConfig, EnsembleConfig, family(family_name).config)
        for name in flat:
            if name not in fits:
                owners = [n for n, f in FAMILIES.items() if name in _names(f.config)]
                raise ValueError(f"knob {name!r} is a knob of {' and '.join(owners)}, not of this ensemble's base "
                                 f"{family_name!r}")
    knobs = Knobs(training=from_knobs(TrainingConfig, flat), model=from_knobs(family(family_name).config, flat),
                  family=family_name, ensemble=ensemble)
    require(not (knobs.model.batch_norm and knobs.training.batch_size == 1), "batch_size", 1,
            "must be > 1 with batch_norm (batch statistics need two samples)")
    return knobs
