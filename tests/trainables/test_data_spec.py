"""The `data:` keys: name XOR path, classes, train_size, flips, and the refusals that name the key. One model
(`trainables.data.spec.DataSpec`) is both what `tunerd validate` checks and what every trial reads, so a
refusal reads the same from both."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trainables.data import DATA_KEYS, DataSpec, load_dataset


def all_labels(data) -> torch.Tensor:
    return torch.cat([data.y_train, data.y_val, data.y_test])


def test_data_keys_are_the_spec_fields() -> None:
    assert DATA_KEYS == tuple(DataSpec.model_fields)


def test_none_means_default_and_neither_name_nor_path_is_digits() -> None:
    spec = DataSpec.from_dict({"name": "wine", "folds": None, "path": None, "train_size": None, "flips": None})
    assert spec == DataSpec(name="wine")
    assert DataSpec.from_dict({"folds": 2}) == DataSpec(name="digits", folds=2)


BAD = [
    ({"name": "wine", "path": "x.npz"},
     "data: give either name (a built-in data set) or path (your own data), not both"),
    ({"name": "wine", "folds": -1}, "data.folds: input should be greater than or equal to 0"),
    ({"name": "wine", "folds": 1}, "data.folds: one fold is no cross-validation"),
    ({"name": "wine", "folds": 2.5}, "data.folds: input should be a valid integer"),
    ({"name": "wine", "test_fraction": 0}, "data.test_fraction: input should be greater than 0"),
    ({"name": "wine", "val_fraction": 0.5, "test_fraction": 0.45},
     "data.test_fraction: val_fraction + test_fraction must leave at least 10% for training"),
    ({"name": "wine", "train_size": 1}, "data.train_size: input should be greater than or equal to 2"),
    ({"name": "wine", "flips": "yes"}, "data.flips: input should be a valid boolean"),
    ({"name": "wine", "flips": True}, "data.flips: only images can be flipped, and wine is tabular data"),
    ({"name": "wine", "text_column": "text"}, "data.text_column: only applies to your own .csv file"),
    ({"path": "x.csv", "text_column": "text"}, "data.label_column: is required with data.text_column"),
    ({"name": "wine", "classes": "class_0"}, "data.classes: input should be a valid list"),
    ({"name": "wine", "clases": [0, 1]}, "data.clases: unknown key (did you mean 'classes'?)"),
    ({"name": "wines"}, "data.name: unknown data set 'wines' (did you mean 'wine'?)"),
]


@pytest.mark.parametrize("data, message", BAD)
def test_bad_keys_are_value_errors_naming_the_key(data: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        load_dataset(data, seed=0)
    assert message in str(info.value)


@pytest.mark.parametrize("data, message", BAD)
def test_validate_refuses_what_a_trial_would_refuse_with_the_same_message(data: dict, message: str) -> None:
    from tunerd import spec as speclib
    from tunerd.errors import SpecError

    with pytest.raises(SpecError) as info:
        speclib.validate({"name": "t", "trainable": "mlp", "space": {"lr": 0.1}, "data": data})
    assert message in str(info.value)


def test_classes_by_user_label_value_or_name(tmp_path: Path) -> None:
    x, y = np.arange(60.0).reshape(30, 2), np.array([3, 7, 9] * 10)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    data = load_dataset({"path": str(tmp_path / "d.npz"), "classes": [9, "3"]}, seed=0)
    assert data.class_names == ("9", "3") and data.n_classes == 2 and len(all_labels(data)) == 20
    raw = data.origin.raw
    assert np.array_equal(raw.x[raw.y == 0], x[y == 9]) and np.array_equal(raw.x[raw.y == 1], x[y == 3])


def test_classes_by_name_on_a_built_in_text_set() -> None:
    data = load_dataset({"name": "bbc_news", "classes": ["tech", "sport"]}, seed=0, max_len=10)
    assert data.class_names == ("tech", "sport")
    assert torch.bincount(all_labels(data)).tolist() == [347, 505]


def test_train_size_keeps_a_stratified_seeded_sample_and_leaves_val_and_test_alone() -> None:
    full = load_dataset({"name": "digits"}, seed=0)
    small = load_dataset({"name": "digits", "train_size": 100}, seed=0)
    again = load_dataset({"name": "digits", "train_size": 100}, seed=0)
    assert len(small.y_train) == 100 and torch.equal(small.x_train, again.x_train)
    assert torch.equal(small.y_val, full.y_val) and torch.equal(small.x_test, full.x_test)
    assert torch.bincount(small.y_train, minlength=10).min() >= 9  # every digit, in proportion
    # the kept samples are training samples
    rows = {tuple(r) for r in full.x_train.flatten(1).tolist()}
    assert all(tuple(r) in rows for r in small.x_train.flatten(1).tolist())
    assert torch.equal(load_dataset({"name": "digits", "train_size": 10**6}, seed=0).y_train, full.y_train)


def test_train_size_refits_tabular_scaling_and_text_vocab_on_the_sample() -> None:
    wine = load_dataset({"name": "wine", "train_size": 30}, seed=0)
    assert torch.allclose(wine.x_train.mean(0), torch.zeros(13), atol=1e-5)
    text = load_dataset({"name": "bbc_news", "train_size": 20}, seed=0, max_len=10)
    origin = text.origin
    assert len(text.y_train) == 20 and len(text.vocab) < len({t for d in origin.raw.x[origin.train] for t in d})


def test_train_size_below_the_classes_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="data.train_size"):
        load_dataset({"name": "digits", "train_size": 5}, seed=0)


def test_flips_default_per_set_and_override() -> None:
    assert not load_dataset({"name": "digits"}, seed=0).flips
    assert load_dataset({"name": "digits", "flips": True}, seed=0).flips
    assert not load_dataset({"name": "wine", "flips": False}, seed=0).flips
