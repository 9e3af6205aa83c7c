"""Knobs: a trial's config turned into the loop's and the model's typed settings.

Every knob's name, type, default and rule is a field of a config in `trainables.configs`: `TrainingConfig`
(shared by all built-ins), `ModelConfig` (architecture knobs every family honours), the family's config, or,
for `ensemble`, `EnsembleConfig`. This module only merges nested groups, rejects unknown names and splits the
knobs between the loop and the model. No torch here: `tunerd validate` reads these names.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from trainables.configs import (
    ACTIVATIONS,
    BASES,
    CELLS,
    ENSEMBLE,
    FAMILY_SPECS,
    INITS,
    LR_SCHEDULES,
    METHODS,
    OPTIMIZERS,
    EnsembleConfig,
    ModelConfig,
    TrainingConfig,
)
from trainables.validation import did_you_mean, from_knobs, require

#: allowed values of the enum knobs, for the spec checker and the docs
KNOB_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": OPTIMIZERS,
    "init": INITS,
    "activation": ACTIVATIONS,
    "lr_schedule": LR_SCHEDULES,
    "cell": CELLS,
    "method": METHODS,
    "base": BASES,
}


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
    if trainable != ENSEMBLE and trainable not in FAMILY_SPECS:
        known = (*FAMILY_SPECS, ENSEMBLE)
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
        return _names(TrainingConfig, EnsembleConfig, *(f.config for f in FAMILY_SPECS.values()))
    return _names(TrainingConfig, FAMILY_SPECS[trainable].config)


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
        fits = _names(TrainingConfig, EnsembleConfig, FAMILY_SPECS[family_name].config)
        for name in flat:
            if name not in fits:
                owners = [n for n, f in FAMILY_SPECS.items() if name in _names(f.config)]
                raise ValueError(f"knob {name!r} is a knob of {' and '.join(owners)}, not of this ensemble's base "
                                 f"{family_name!r}")
    knobs = Knobs(training=from_knobs(TrainingConfig, flat), model=from_knobs(FAMILY_SPECS[family_name].config, flat),
                  family=family_name, ensemble=ensemble)
    require(not (knobs.model.batch_norm and knobs.training.batch_size == 1), "batch_size", 1,
            "must be > 1 with batch_norm (batch statistics need two samples)")
    return knobs
