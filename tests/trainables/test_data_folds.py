"""k-fold cross-validation: disjoint validation folds over train + val, the same test split, refits per fold."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from trainables.data import build_vocab, load_dataset


def test_folds_cover_train_and_val_once_and_keep_the_test_split() -> None:
    data = load_dataset({"name": "digits"}, seed=0)
    folds = data.folds(5, seed=0)
    assert len(folds) == 5
    pool = set(data.origin.train) | set(data.origin.val)
    validated = [set(fold.origin.val.tolist()) for fold in folds]
    assert set().union(*validated) == pool and sum(map(len, validated)) == len(pool)
    for fold, val in zip(folds, validated):
        assert set(fold.origin.train.tolist()) == pool - val
        assert torch.equal(fold.x_test, data.x_test) and torch.equal(fold.y_test, data.y_test)
        assert len(fold.y_train) + len(fold.y_val) == len(pool)
        assert np.abs(np.bincount(fold.y_val.numpy(), minlength=10) / len(fold.y_val) - 0.1).max() < 0.03
    assert [set(f.origin.val.tolist()) for f in data.folds(5, seed=0)] == validated  # seeded
    assert [set(f.origin.val.tolist()) for f in data.folds(5, seed=1)] != validated


def test_each_fold_standardises_with_its_own_training_part() -> None:
    for fold in load_dataset({"name": "wine"}, seed=0).folds(3, seed=0):
        assert torch.allclose(fold.x_train.mean(0), torch.zeros(13), atol=1e-5)
        assert not torch.allclose(fold.x_val.mean(0), torch.zeros(13), atol=1e-3)


def test_each_fold_builds_its_vocabulary_from_its_training_part(tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(60)]  # each document holds one word of its own, and a shared one
    frame = pd.DataFrame({"text": [f"shared {w}" for w in words], "label": ["a", "b"] * 30})
    frame.to_csv(tmp_path / "docs.csv", index=False)
    data = load_dataset({"path": str(tmp_path / "docs.csv"), "text_column": "text", "label_column": "label"},
                        seed=0, max_len=3)
    folds = data.folds(4, seed=0)
    for fold in folds:
        raw = fold.origin.raw
        assert fold.vocab == build_vocab(raw.x[fold.origin.train], 20000)
        assert not {words[i] for i in fold.origin.val} & set(fold.vocab)
        assert (fold.x_val[:, 1] == 1).all() and fold.x_train.shape[1] == 3  # a held-out word is <unk>
    assert len({fold.vocab for fold in folds}) == 4


def test_train_size_caps_each_folds_training_part() -> None:
    folds = load_dataset({"name": "wine", "folds": 3, "train_size": 40}, seed=0).folds(3, seed=0)
    assert len(folds) == 3 and all(len(f.y_train) == 40 for f in folds)


@pytest.mark.parametrize("k", [1, 0, 2.5, True])
def test_fewer_than_two_folds_is_refused(k) -> None:
    with pytest.raises(ValueError, match="data.folds"):
        load_dataset({"name": "wine"}, seed=0).folds(k, seed=0)


def test_more_folds_than_a_class_has_samples_is_a_clear_error(tmp_path: Path) -> None:
    np.savez(tmp_path / "few.npz", x=np.arange(40.0).reshape(20, 2), y=np.array([0] * 16 + [1] * 4))
    data = load_dataset({"path": str(tmp_path / "few.npz"), "val_fraction": 0.2, "test_fraction": 0.2}, seed=0)
    with pytest.raises(ValueError, match="data.folds: cannot cut"):
        data.folds(15, seed=0)  # 16 samples to cut, none of the two classes has 15


def test_each_fold_reports_the_scaling_it_used() -> None:
    data = load_dataset({"name": "wine", "train_size": 60}, seed=0)
    for part in (data, *data.folds(3, seed=0)):
        mean, std = part.scaling
        origin = part.origin
        kept = origin.raw.x[part.origin.train].astype(np.float32)
        assert mean.shape == std.shape == (13,) and (std > 0).all()
        raw_train = torch.from_numpy(kept)
        rows = {tuple(r) for r in torch.round((part.x_train * std + mean) * 1000).tolist()}
        assert rows <= {tuple(r) for r in torch.round(raw_train * 1000).tolist()}
    assert load_dataset({"name": "digits"}, seed=0).scaling is None
