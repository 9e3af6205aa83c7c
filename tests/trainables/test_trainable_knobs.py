from __future__ import annotations

import numpy as np
import pytest

from trainables import KNOB_CHOICES, knob_names
from trainables.knobs import flatten_knobs, parse_knobs

SHARED = {"lr", "optimizer", "momentum", "batch_size", "epochs", "l1", "l2", "dropout", "batch_norm", "init",
          "activation", "grad_clip", "lr_schedule", "early_stopping_patience", "augment", "init_from",
          "freeze_features", "amp", "prune"}
CNN = {"conv_layers", "filters", "kernel_size", "dense_units"}
MLP = {"hidden_layers", "units", "select_features", "pca"}
RNN = {"cell", "embedding_dim", "hidden_size", "num_layers", "bidirectional", "vocab_size", "max_len"}


def test_knob_names_are_shared_plus_the_family() -> None:
    assert knob_names("cnn") == SHARED | CNN
    assert knob_names("mlp") == SHARED | MLP
    assert knob_names("rnn") == SHARED | RNN
    with pytest.raises(ValueError, match="did you mean 'cnn'"):
        knob_names("cnm")


def test_an_ensemble_accepts_the_knobs_of_every_base() -> None:
    # the spec checker cannot know a searched base before sampling; the trial checks the chosen one
    assert knob_names("ensemble") == SHARED | {"method", "members", "base", "sample_fraction"} | CNN | MLP | RNN
    knobs = parse_knobs("ensemble", {"base": "rnn", "cell": "gru", "members": 3, "lr": 0.01})
    assert knobs.family == "rnn" and knobs.model.cell == "gru" and knobs.ensemble.members == 3
    assert knobs.as_dict()["method"] == "bagging" and knobs.as_dict()["cell"] == "gru"
    with pytest.raises(ValueError, match="knob 'units' is a knob of mlp, not of this ensemble's base 'cnn'"):
        parse_knobs("ensemble", {"base": "cnn", "units": 32})


@pytest.mark.parametrize("config, message", [
    ({"method": "stacking"}, "method: must be one of bagging, boosting"),
    ({"base": "svm"}, "base: must be one of cnn, mlp, rnn"),
    ({"members": 0}, "members: must be >= 1"),
    ({"sample_fraction": 0.0}, "sample_fraction: must be in \\(0, 1\\]"),
    ({"sample_fraction": 1.5}, "sample_fraction"),
])
def test_bad_ensemble_knobs(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_knobs("ensemble", config)


def test_knob_choices() -> None:
    assert KNOB_CHOICES == {
        "optimizer": ("adam", "adamw", "sgd", "rmsprop"),
        "init": ("xavier", "kaiming", "default"),
        "activation": ("relu", "tanh", "sigmoid", "gelu", "leaky_relu"),
        "lr_schedule": ("none", "cosine", "step"),
        "cell": ("lstm", "gru"),
        "method": ("bagging", "boosting"),
        "base": ("cnn", "mlp", "rnn"),
    }


def test_defaults() -> None:
    knobs = parse_knobs("mlp", {}).as_dict()
    assert knobs == {"lr": 1e-3, "optimizer": "adam", "momentum": 0.9, "batch_size": 64, "epochs": None,
                     "l1": 0.0, "l2": 0.0, "grad_clip": 0.0, "lr_schedule": "none", "early_stopping_patience": 0,
                     "augment": 0.0, "init_from": None, "freeze_features": False, "amp": None, "prune": 0.0,
                     "dropout": 0.0, "batch_norm": False, "activation": "relu", "init": "default", "hidden_layers": 2,
                     "units": 128, "select_features": None, "pca": None}
    assert {k: v for k, v in parse_knobs("rnn", {}).as_dict().items() if k in RNN} == {
        "cell": "lstm", "embedding_dim": 64, "hidden_size": 64, "num_layers": 1, "bidirectional": False,
        "vocab_size": 20000, "max_len": 200}
    assert {k: v for k, v in parse_knobs("ensemble", {}).as_dict().items() if k in MLP | {"method", "members", "base",
                                                                                       "sample_fraction"}} == {
        "method": "bagging", "members": 5, "base": "mlp", "sample_fraction": 1.0, "hidden_layers": 2, "units": 128,
        "select_features": None, "pca": None}


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
    ({"init_from": ""}, "init_from: must name an experiment"),
    ({"init_from": 3}, "init_from: must be a string"),
])
def test_bad_knobs_are_value_errors_naming_the_knob(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_knobs("cnn", config)


def test_planned_epochs_is_the_knob_capped_by_the_experiment() -> None:
    assert parse_knobs("mlp", {}).training.planned_epochs(20) == 20
    assert parse_knobs("mlp", {"epochs": 5}).training.planned_epochs(20) == 5
    assert parse_knobs("mlp", {"epochs": 50}).training.planned_epochs(20) == 20
