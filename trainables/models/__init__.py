"""Model families: each is an `nn.Module` built from `(config, input_shape, n_classes)` plus its config class.

The config class's fields are the family's knobs (on top of `ModelConfig`'s shared ones), so adding a family
is one entry in `FAMILIES`; the loop, checkpoints and export need no change. Every family keeps its layers
in `features` (up to the last hidden representation) and `classifier` (the head), for transfer learning.
Ensembles and cross-validation combine several family models into one `Ensemble` (models/ensemble.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from torch import nn

from trainables.catalog import require_data_kind
from trainables.configs import ENSEMBLE, FAMILY_SPECS, EnsembleConfig, ModelConfig, RNNConfig
from trainables.models.cnn import CNN
from trainables.models.ensemble import Ensemble, Recoded, Reindex, Rescale
from trainables.models.feature_map import FeatureMap
from trainables.models.mlp import MLP
from trainables.models.rnn import RNN
from trainables.validation import did_you_mean


@dataclass(frozen=True)
class Family:
    config: type[ModelConfig]
    module: type[nn.Module]
    #: the `Dataset.kind`s the family can learn from
    data_kinds: tuple[str, ...]


_NETWORKS: dict[str, type[nn.Module]] = {"cnn": CNN, "mlp": MLP, "rnn": RNN}
FAMILIES: dict[str, Family] = {name: Family(spec.config, _NETWORKS[name], spec.data_kinds)
                               for name, spec in FAMILY_SPECS.items()}

#: the record's `model_config` keys that are not a family's knobs (see `build_model`)
ENSEMBLE_KEYS = tuple(f.name for f in fields(EnsembleConfig))
FOLDS_KEY = "folds"


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"unknown model family {name!r}{did_you_mean(name, FAMILIES)}; families are "
                         f"{', '.join(FAMILIES)}")
    return FAMILIES[name]


def model_config(config: ModelConfig, ensemble: EnsembleConfig | None, folds: int) -> dict[str, Any]:
    """The record's `model_config`: the family's knobs, plus an ensemble's own, plus `folds` when k > 1."""
    flat = asdict(config)
    if ensemble is not None:
        flat.update(asdict(ensemble))
    if folds > 1:
        flat[FOLDS_KEY] = folds
    return flat


def build_model(trainable: str, config: ModelConfig | Mapping[str, Any], input_shape: tuple[int, ...],
                n_classes: int) -> nn.Module:
    """A fresh model of built-in `trainable`.

    `config` is the family's config dataclass, or a record's `model_config` mapping (see `model_config`):
    the family's knobs; for `ensemble` also `method`, `members`, `base`, `sample_fraction` (-> an `Ensemble`
    of `members` base models); and `folds` (k > 1, a cross-validated trial) -> an `Ensemble` of k
    `Recoded(recode, model)`, one per fold, each `model` being what one fold trained (a family model or an
    ensemble). Weights come from `load_state_dict`; the structure here matches the training loop's.
    """
    if isinstance(config, ModelConfig):
        return family(trainable).module(config, tuple(input_shape), n_classes)
    values = dict(config)
    folds = values.pop(FOLDS_KEY, 0) or 0
    if folds > 1:
        base = values.get("base", EnsembleConfig.base) if trainable == ENSEMBLE else trainable
        return Ensemble([Recoded(new_recode(base, values, input_shape), build_model(trainable, values, input_shape,
                                                                                     n_classes))
                         for _ in range(folds)])
    if trainable == ENSEMBLE:
        ensemble = EnsembleConfig(**{key: values.pop(key) for key in ENSEMBLE_KEYS if key in values})
        base = family(ensemble.base)
        return Ensemble([base.module(base.config(**values), tuple(input_shape), n_classes)
                         for _ in range(ensemble.members)])
    chosen = family(trainable)
    return chosen.module(chosen.config(**values), tuple(input_shape), n_classes)


def new_recode(family_name: str, values: Mapping[str, Any], input_shape: tuple[int, ...]) -> nn.Module:
    """An identity input map for a fold model of `family_name` (its buffers are fitted or loaded later)."""
    if family_name == "rnn":
        return Reindex(values.get("vocab_size", RNNConfig.vocab_size))
    return Rescale(tuple(input_shape))


__all__ = ["CNN", "ENSEMBLE", "ENSEMBLE_KEYS", "Ensemble", "FAMILIES", "FOLDS_KEY", "Family", "FeatureMap", "MLP",
           "RNN", "Recoded", "Reindex", "Rescale", "build_model", "family", "model_config", "new_recode",
           "require_data_kind"]
