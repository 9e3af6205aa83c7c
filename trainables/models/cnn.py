"""A small convolutional network for images (N, C, H, W): the `cnn` built-in."""
from __future__ import annotations

from torch import Tensor, nn

from trainables.configs import CNNConfig
from trainables.models.common import dense_block, init_weights, make_activation
from trainables.validation import require


class CNN(nn.Module):
    """Conv blocks, then one dense hidden layer, then the classifier.

    Block i: conv with `filters * 2**i` channels and 'same' padding, [batch norm], activation, and a 2x2
    max-pool only while both sides are still >= 2 pixels, so deep stacks fit small images (digits: 8x8).
    `features` (everything up to the last hidden layer) and `classifier` are separate so that transfer
    learning can freeze one and train the other.
    """

    def __init__(self, config: CNNConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        require(len(input_shape) == 3, "cnn input", tuple(input_shape),
                "needs images shaped (channels, height, width); use mlp for tabular data")
        channels, height, width = input_shape
        layers: list[nn.Module] = []
        for i in range(config.conv_layers):
            out = config.filters * 2**i
            layers.append(nn.Conv2d(channels, out, config.kernel_size, padding="same", bias=not config.batch_norm))
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(make_activation(config.activation))
            if min(height, width) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            channels = out
        layers.append(nn.Flatten())
        if config.dropout > 0:
            layers.append(nn.Dropout(config.dropout))
        layers += dense_block(channels * height * width, config.dense_units, config)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(config.dense_units, n_classes)
        init_weights(self, config.init, config.activation)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (N, n_classes)."""
        return self.classifier(self.features(x))
