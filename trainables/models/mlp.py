"""A multi-layer perceptron over flattened input (tabular features, or images): the `mlp` built-in."""
from __future__ import annotations

import math

from torch import Tensor, nn

from trainables.configs import MLPConfig
from trainables.models.common import dense_block, init_weights


class MLP(nn.Module):
    """`hidden_layers` x (linear, [batch norm], activation, [dropout]), then the classifier.

    `hidden_layers: 0` is multinomial logistic regression, a useful baseline to search against.
    """

    def __init__(self, config: MLPConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        width = math.prod(input_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        for _ in range(config.hidden_layers):
            layers += dense_block(width, config.units, config)
            width = config.units
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, n_classes)
        init_weights(self, config.init, config.activation)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, n_classes)."""
        return self.classifier(self.features(x))
