"""A multi-layer perceptron over flattened input (tabular features, or images): the `mlp` built-in.

For tabular data a fixed `FeatureMap` (`select_features`, `pca`) comes first; it is neither in `features`
nor in `classifier`, so transfer learning and `freeze_features` treat the layers as before.
"""
from __future__ import annotations

import math

from torch import Tensor, nn

from trainables.configs import MLPConfig
from trainables.models.common import dense_block, init_weights
from trainables.models.feature_map import FeatureMap


class MLP(nn.Module):
    """[feature map], `hidden_layers` x (linear, [batch norm], activation, [dropout]), then the classifier.

    `hidden_layers: 0` is multinomial logistic regression, a useful baseline to search against.
    """

    def __init__(self, config: MLPConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        self.feature_map = FeatureMap(config, math.prod(input_shape))
        width = self.feature_map.out_features
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(config.hidden_layers):
            layers += dense_block(width, config.units, config)
            width = config.units
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, n_classes)
        init_weights(self, config.init, config.activation)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, n_classes)."""
        return self.classifier(self.features(self.feature_map(x)))
