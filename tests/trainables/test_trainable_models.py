from __future__ import annotations

import pytest
import torch
from torch import nn

from trainables import KNOB_CHOICES, load_dataset
from trainables.configs import CNNConfig, MLPConfig
from trainables.models import CNN, MLP, build_model

DATA_SETS = ("digits", "wine", "breast_cancer")


@pytest.mark.parametrize("name", DATA_SETS)
@pytest.mark.parametrize("trainable", ["cnn", "mlp"])
def test_output_shape_on_each_data_set(trainable: str, name: str) -> None:
    data = load_dataset({"name": name}, seed=0)
    if trainable == "cnn" and data.kind != "image":
        with pytest.raises(ValueError, match="use mlp for tabular data"):
            build_model(trainable, {}, data.input_shape, data.n_classes)
        return
    for config in ({}, {"batch_norm": True, "dropout": 0.3}):
        model = build_model(trainable, config, data.input_shape, data.n_classes).eval()
        assert model(data.x_val[:5]).shape == (5, data.n_classes)


def test_cnn_pools_only_while_the_image_allows() -> None:
    model = CNN(CNNConfig(conv_layers=5, filters=4), (1, 8, 8), 10)  # 8 -> 4 -> 2 -> 1, then no more pooling
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 3
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == [4, 8, 16, 32, 64]
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_mlp_without_hidden_layers_is_a_linear_classifier() -> None:
    model = MLP(MLPConfig(hidden_layers=0), (1, 8, 8), 10)
    assert [type(m) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))] == [nn.Linear]
    assert model.classifier.in_features == 64


@pytest.mark.parametrize("init", KNOB_CHOICES["init"])
def test_init_schemes(init: str) -> None:
    torch.manual_seed(0)
    default = MLP(MLPConfig(), (13,), 3)
    torch.manual_seed(0)
    model = MLP(MLPConfig(init=init, activation="tanh"), (13,), 3)
    same = torch.equal(default.classifier.weight, model.classifier.weight)
    assert same == (init == "default")
    if init != "default":
        assert all(torch.all(m.bias == 0) for m in model.modules() if isinstance(m, nn.Linear))


def test_family_knobs_are_validated() -> None:
    with pytest.raises(ValueError, match="conv_layers"):
        CNNConfig(conv_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        MLPConfig(dropout=1.0)
    with pytest.raises(ValueError, match="activation"):
        MLPConfig(activation="swish")
