"""What every model family shares: dense blocks, activations and weight init (the knobs: `trainables.configs`)."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from trainables.configs import ModelConfig

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
}
LEAKY_SLOPE = 0.01


#: the nonlinearity `torch.nn.init.calculate_gain` should assume for each activation (GELU is ReLU-like)
_GAIN_NONLINEARITY = {"relu": "relu", "gelu": "relu", "leaky_relu": "leaky_relu", "tanh": "tanh",
                      "sigmoid": "sigmoid"}


def dense_block(width: int, units: int, config: ModelConfig) -> list[nn.Module]:
    """linear, [batch norm], activation, [dropout]: the hidden layer every family uses (no bias before
    batch norm, which has its own shift)."""
    layers: list[nn.Module] = [nn.Linear(width, units, bias=not config.batch_norm)]
    if config.batch_norm:
        layers.append(nn.BatchNorm1d(units))
    layers.append(make_activation(config.activation))
    if config.dropout > 0:
        layers.append(nn.Dropout(config.dropout))
    return layers


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


def init_weights(model: nn.Module, scheme: str, activation: str) -> None:
    """Re-initialise conv, linear and recurrent weights (biases to 0).

    Conv and linear layers get the gain suited to `activation`. LSTM/GRU matrices are initialised one gate
    block at a time with gain 1 (the gates have their own sigmoid/tanh, whatever `activation` is), and an
    LSTM's forget-gate bias starts at 1 so that memory is kept until training learns to drop it.
    Embeddings keep PyTorch's N(0, 1). `default` keeps PyTorch's own initialisation, so the knob can be
    searched against it.
    """
    if scheme == "default":
        return
    nonlinearity = _GAIN_NONLINEARITY[activation]
    param = LEAKY_SLOPE if nonlinearity == "leaky_relu" else None
    for module in model.modules():
        if isinstance(module, (nn.LSTM, nn.GRU)):
            _init_recurrent(module, scheme)
            continue
        if not isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            continue
        if scheme == "xavier":
            nn.init.xavier_uniform_(module.weight, gain=nn.init.calculate_gain(nonlinearity, param))
        else:
            nn.init.kaiming_normal_(module.weight, a=param or 0.0, nonlinearity=nonlinearity)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _init_recurrent(module: nn.LSTM | nn.GRU, scheme: str) -> None:
    gates = 4 if isinstance(module, nn.LSTM) else 3  # PyTorch's gate order: LSTM i, f, g, o; GRU r, z, n
    for name, tensor in module.named_parameters():
        if name.startswith("weight"):
            for block in tensor.detach().chunk(gates):  # views: each gate's matrix has its own fan-in/out
                if scheme == "xavier":
                    nn.init.xavier_uniform_(block)
                else:
                    nn.init.kaiming_normal_(block, nonlinearity="linear")
        else:
            nn.init.zeros_(tensor)
            if isinstance(module, nn.LSTM) and name.startswith("bias_ih"):
                nn.init.ones_(tensor.detach().chunk(gates)[1])
