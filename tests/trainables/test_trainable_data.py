from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables import load_dataset
from trainables.data import SOURCES, split_indices

DATA = {"name": "wine", "val_fraction": 0.2, "test_fraction": 0.2, "folds": 0}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_split_is_seeded(name: str) -> None:
    a, b = load_dataset({**DATA, "name": name}, seed=3), load_dataset({**DATA, "name": name}, seed=3)
    c = load_dataset({**DATA, "name": name}, seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.y_train, c.y_train)
    expected = torch.int64 if a.kind == "text" else torch.float32  # text: token ids
    assert a.x_train.dtype == expected and a.y_train.dtype == torch.int64


def test_split_is_disjoint_stratified_and_sized() -> None:
    y = SOURCES["digits"]().y
    train, val, test = split_indices(y, 0.2, 0.25, seed=0)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert sorted([*train, *val, *test]) == list(range(len(y)))
    assert len(test) == pytest.approx(0.25 * len(y), abs=1) and len(val) == pytest.approx(0.2 * len(y), abs=1)
    whole = np.bincount(y) / len(y)
    for part in (train, val, test):
        assert np.abs(np.bincount(y[part], minlength=10) / len(part) - whole).max() < 0.02


def test_tabular_is_standardised_with_train_statistics_only() -> None:
    data = load_dataset(DATA, seed=0)
    raw = SOURCES["wine"]()
    train, val, _ = split_indices(raw.y, 0.2, 0.2, seed=0)
    mean, std = raw.x[train].mean(0), raw.x[train].std(0)
    assert torch.allclose(data.x_train.mean(0), torch.zeros(13), atol=1e-5)
    assert torch.allclose(data.x_train.std(0, unbiased=False), torch.ones(13), atol=1e-4)
    assert torch.allclose(data.x_val, torch.tensor((raw.x[val] - mean) / std, dtype=torch.float32), atol=1e-5)


def test_digits_are_images_in_unit_range() -> None:
    data = load_dataset({**DATA, "name": "digits"}, seed=0)
    assert data.kind == "image" and data.input_shape == (1, 8, 8) and data.n_classes == 10
    assert data.x_train.shape[1:] == (1, 8, 8)
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1


@pytest.mark.parametrize("classes, expect", [([8, 3], [8, 3]), (["class_2", "class_0"], [2, 0])])
def test_classes_keeps_and_relabels_in_given_order(classes: list, expect: list) -> None:
    name = "digits" if isinstance(classes[0], int) else "wine"
    data = load_dataset({**DATA, "name": name, "classes": classes}, seed=0)
    full = SOURCES[name]()
    assert data.n_classes == 2
    assert sorted(torch.cat([data.y_train, data.y_val, data.y_test]).unique().tolist()) == [0, 1]
    kept = int(np.isin(full.y, expect).sum())
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == kept
    # label 0 is the first class listed
    first = int((full.y == expect[0]).sum())
    assert int((torch.cat([data.y_train, data.y_val, data.y_test]) == 0).sum()) == first


@pytest.mark.parametrize("data, message", [
    ({"name": "cifar"}, "digits, wine, breast_cancer"),
    ({"name": "wine", "val_fraktion": 0.1}, "did you mean 'val_fraction'"),
    ({"name": "wine", "classes": [0, 9]}, "data.classes"),
    ({"name": "wine", "classes": [1, 1]}, "data.classes"),
    ({"name": "wine", "classes": ["nope", "class_0"]}, "must name a class"),
    ({"name": "wine", "val_fraction": 0.0}, "data.val_fraction"),
    ({"name": "wine", "val_fraction": 0.5, "test_fraction": 0.5}, "must leave at least 10% for training"),
    ({"name": "wine", "folds": -1}, "data.folds"),
    ({"path": "x.npz"}, "no such file"),
])
def test_bad_data_specs_are_value_errors(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_dataset(data, seed=0)


def test_optional_keys_may_be_null() -> None:
    data = load_dataset({**DATA, "folds": None, "text_column": None, "label_column": None}, seed=0)
    assert data.n_classes == 3
