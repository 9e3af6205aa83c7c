"""Model families: each is an `nn.Module` built from `(config, input_shape, n_classes)` plus its config class.

The config class's fields are the family's knobs (on top of `ModelConfig`'s shared ones), so adding a family
is one entry in `FAMILIES`; the loop, checkpoints and export need no change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from torch import nn

from trainables.models.cnn import CNN, CNNConfig
from trainables.models.common import ACTIVATIONS, INITS, ModelConfig
from trainables.models.mlp import MLP, MLPConfig


@dataclass(frozen=True)
class Family:
    config: type[ModelConfig]
    module: type[nn.Module]


FAMILIES: dict[str, Family] = {
    "cnn": Family(CNNConfig, CNN),
    "mlp": Family(MLPConfig, MLP),
}


def build_model(trainable: str, config: ModelConfig | Mapping[str, Any], input_shape: tuple[int, ...],
                n_classes: int) -> nn.Module:
    """A fresh model of family `trainable`; `config` may be the dataclass or its `asdict` (from a checkpoint)."""
    family = FAMILIES[trainable]
    if not isinstance(config, ModelConfig):
        config = family.config(**config)
    return family.module(config, tuple(input_shape), n_classes)


__all__ = ["ACTIVATIONS", "CNN", "CNNConfig", "FAMILIES", "Family", "INITS", "MLP", "MLPConfig", "ModelConfig",
           "build_model"]
