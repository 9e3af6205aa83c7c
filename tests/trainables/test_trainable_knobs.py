from __future__ import annotations

import numpy as np
import pytest

from trainables import KNOB_CHOICES, knob_names
from trainables.knobs import flatten_knobs, parse_knobs

SHARED = {"lr", "optimizer", "momentum", "batch_size", "epochs", "l1", "l2", "dropout", "batch_norm", "init",
          "activation", "grad_clip", "lr_schedule", "early_stopping_patience", "augment"}


def test_knob_names_are_shared_plus_the_family() -> None:
    assert knob_names("cnn") == SHARED | {"conv_layers", "filters", "kernel_size", "dense_units"}
    assert knob_names("mlp") == SHARED | {"hidden_layers", "units"}
    with pytest.raises(ValueError, match="did you mean 'cnn'"):
        knob_names("cnm")


def test_knob_choices() -> None:
    assert KNOB_CHOICES == {
        "optimizer": ("adam", "adamw", "sgd", "rmsprop"),
        "init": ("xavier", "kaiming", "default"),
        "activation": ("relu", "tanh", "sigmoid", "gelu", "leaky_relu"),
        "lr_schedule": ("none", "cosine", "step"),
    }


def test_defaults() -> None:
    knobs = parse_knobs("mlp", {}).as_dict()
    assert knobs == {"lr": 1e-3, "optimizer": "adam", "momentum": 0.9, "batch_size": 64, "epochs": None,
                     "l1": 0.0, "l2": 0.0, "grad_clip": 0.0, "lr_schedule": "none", "early_stopping_patience": 0,
                     "augment": 0.0, "dropout": 0.0, "batch_norm": False, "activation": "relu", "init": "default",
                     "hidden_layers": 2, "units": 128}


def test_groups_and_conditional_choices_are_flattened() -> None:
    config = {"lr": 0.01, "arch": {"hidden_layers": 3, "width": {"units": 32}}, "optim": {"optimizer": "sgd"}}
    assert flatten_knobs(config) == {"lr": 0.01, "hidden_layers": 3, "units": 32, "optimizer": "sgd"}
    knobs = parse_knobs("mlp", config)
    assert knobs.model.units == 32 and knobs.training.optimizer == "sgd"


def test_a_knob_set_twice_is_an_error() -> None:
    with pytest.raises(ValueError, match="'lr' is set twice: at 'lr' and at 'group.lr'"):
        flatten_knobs({"lr": 0.1, "group": {"lr": 0.2}})


def test_searcher_values_are_coerced_to_plain_types() -> None:
    knobs = parse_knobs("cnn", {"batch_size": np.float64(32.0), "lr": np.float32(0.5), "batch_norm": np.bool_(1),
                                "filters": 16.0, "epochs": np.int64(3)})
    assert type(knobs.training.batch_size) is int and knobs.training.batch_size == 32
    assert type(knobs.training.lr) is float and type(knobs.model.batch_norm) is bool
    assert knobs.model.filters == 16 and type(knobs.training.epochs) is int


@pytest.mark.parametrize("config, message", [
    ({"lrr": 0.1}, "unknown knob 'lrr' for trainable 'cnn' \\(did you mean 'lr'\\?\\)"),
    ({"units": 64}, "unknown knob 'units' for trainable 'cnn'"),
    ({"lr": -1.0}, "lr: must be > 0"),
    ({"lr": "fast"}, "lr: must be a number"),
    ({"optimizer": "adagrad"}, "optimizer: must be one of adam, adamw, sgd, rmsprop"),
    ({"batch_size": 1.5}, "batch_size: must be an integer"),
    ({"batch_size": 1, "batch_norm": True}, "batch_size: must be > 1 with batch_norm"),
    ({"dropout": 1.0}, "dropout: must be in \\[0, 1\\)"),
    ({"batch_norm": "yes"}, "batch_norm: must be true or false"),
    ({"init": "orthogonal"}, "init: must be one of"),
    ({"lr_schedule": "cyclic"}, "lr_schedule: must be one of"),
    ({"epochs": 0}, "epochs: must be >= 1"),
    ({"conv_layers": 0}, "conv_layers: must be >= 1"),
    ({"init_from": "exp1"}, "not supported yet"),
])
def test_bad_knobs_are_value_errors_naming_the_knob(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_knobs("cnn", config)


def test_planned_epochs_is_the_knob_capped_by_the_experiment() -> None:
    assert parse_knobs("mlp", {}).training.planned_epochs(20) == 20
    assert parse_knobs("mlp", {"epochs": 5}).training.planned_epochs(20) == 5
    assert parse_knobs("mlp", {"epochs": 50}).training.planned_epochs(20) == 20
