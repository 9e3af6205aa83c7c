"""What every model family shares: the architecture knobs common to all, activations and weight init."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from trainables.validation import require, require_choice

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
}
LEAKY_SLOPE = 0.01

INITS = ("xavier", "kaiming", "default")

#: the nonlinearity `torch.nn.init.calculate_gain` should assume for each activation (GELU is ReLU-like)
_GAIN_NONLINEARITY = {"relu": "relu", "gelu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh",
                      "sigmoid": "sigmoid"}


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Knobs every family honours. Family configs subclass this and add their own fields (= their knobs)."""

    dropout: float = 0.0
    batch_norm: bool = False
    activation: str = "relu"
    init: str = "default"

    def __post_init__(self) -> None:
        require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "must be in [0, 1)")
        require_choice("activation", self.activation, ACTIVATIONS)
        require_choice("init", self.init, INITS)


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def init_weights(model: nn.Module, scheme: str, activation: str) -> None:
    """Re-initialise conv and linear weights (biases to 0) with the gain suited to `activation`.

    `default` keeps PyTorch's own initialisation, so the knob can be searched against it.
    """
    if scheme == "default":
        return
    nonlinearity = _GAIN_NONLINEARITY[activation]
    param = LEAKY_SLOPE if nonlinearity == "leaky_relu" else None
    for module in model.modules():
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            continue
        if scheme == "xavier":
            nn.init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain(nonlinearity, param))
        else:
            nn.init.kaiming_normal_(module.weight, a=param or 0.0, nonlinearity=nonlinearity)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
