"""The tabular knobs (`select_features`, `pca`) at trial time: checked against the data, fitted once per fold
on its training rows, and the `n_features` every report of a tabular trial carries.

The fit itself is the model's (`models.feature_map.FeatureMap`, buffers in the state dict), so export,
scoring the test split, int8, folds and ensembles need nothing from here; this is the loop's side of it.
"""
from __future__ import annotations

import math
from typing import Any

from torch import nn

from trainables.configs import TABULAR_KNOBS, MLPConfig, ModelConfig
from trainables.data import Dataset
from trainables.models import FeatureMap
from trainables.validation import require


def tabular_knobs(config: ModelConfig) -> dict[str, Any]:
    """The TABULAR_KNOBS that `config` sets (not null); only an `MLPConfig` has them."""
    return {name: getattr(config, name) for name in TABULAR_KNOBS if getattr(config, name, None) is not None}


def require_tabular(config: ModelConfig, kind: str) -> None:
    """A ValueError naming the knob when a tabular knob is set for data of another `kind`."""
    for name, value in tabular_knobs(config).items():
        require(kind == "tabular", name, value, f"works on tabular data only (this data set is {kind})")


def feature_metrics(config: ModelConfig, data: Dataset) -> dict[str, int]:
    """`{"n_features": ...}`, what the network sees, for tabular data; nothing for images and text."""
    if data.kind != "tabular":
        return {}
    return {"n_features": config.n_features(math.prod(data.input_shape))}


class FeatureFit:
    """One fold's `FeatureMap`, fitted once on its training rows (the same split every member of an
    ensemble trains from) and copied into each model built for the fold.

    A model is built, `init_from` loads into it, then this fit: the map is always this trial's own, never
    a source's fitted on other rows. The checks run here, before the first model is built: the trial start.
    """

    def __init__(self, config: ModelConfig, data: Dataset, seed: int) -> None:
        require_tabular(config, data.kind)
        self.state: dict[str, Any] | None = None
        if isinstance(config, MLPConfig) and tabular_knobs(config):
            fitted = FeatureMap(config, math.prod(data.input_shape)).fit(data.x_train, data.y_train, seed)
            self.state = fitted.state_dict()

    def __call__(self, model: nn.Module) -> None:
        if self.state is None:
            return
        for module in model.modules():
            if isinstance(module, FeatureMap):
                module.load_state_dict(self.state)
