"""From a raw labelled set to the in-memory tensors a trial trains on: class filter, split, scaling."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Sequence

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from trainables.data.sources import RawData
from trainables.validation import require

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Train / val / test tensors (float32 inputs, int64 labels) held in memory, ready to index by batch."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: int
    input_shape: tuple[int, ...]
    kind: str  # "image" | "tabular"

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """`(x, y)` of split `name` (train, val or test)."""
        require(name in SPLITS, "split", name, f"must be one of {', '.join(SPLITS)}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def to(self, device: torch.device | str) -> Dataset:
        """The same data on `device`: the sets are small, so a trial keeps them there for every epoch."""
        tensors = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                   if isinstance(getattr(self, f.name), Tensor)}
        return replace(self, **tensors)


def select_classes(raw: RawData, classes: Sequence[int | str]) -> RawData:
    """Keep only `classes` (labels or class names), relabelled 0..k-1 in the order given."""
    labels = []
    for c in classes:
        if isinstance(c, str):
            require(c in raw.class_names, "data.classes", c, f"must name a class ({', '.join(raw.class_names)})")
            labels.append(raw.class_names.index(c))
        else:
            require(isinstance(c, (int, np.integer)) and 0 <= c < len(raw.class_names), "data.classes", c,
                    f"must be a label in 0..{len(raw.class_names) - 1} or a class name")
            labels.append(int(c))
    require(len(set(labels)) == len(labels), "data.classes", list(classes), "names a class twice")
    keep = np.isin(raw.y, labels)
    relabel = np.full(len(raw.class_names), -1)
    relabel[labels] = np.arange(len(labels))
    return RawData(raw.x[keep], relabel[raw.y[keep]], raw.kind, tuple(raw.class_names[i] for i in labels))


def split_indices(y: np.ndarray, val_fraction: float, test_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified train / val / test indices; the test set is cut first, then val from the rest.

    Fractions are of the whole set, so val is `val_fraction / (1 - test_fraction)` of what is left.
    """
    rest = np.arange(len(y))
    test = np.array([], dtype=np.int64)
    if test_fraction > 0:
        rest, test = train_test_split(rest, test_size=test_fraction, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1.0 - test_fraction), stratify=y[rest],
                                  random_state=seed)
    return train, val, test


def build_dataset(raw: RawData, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> Dataset:
    """Tensors for the given split; tabular features are standardised with training statistics only,
    so nothing about val or test leaks into training."""
    x = raw.x.astype(np.float32)
    if raw.kind == "tabular":
        mean = x[train].mean(axis=0)
        std = x[train].std(axis=0)
        x = (x - mean) / np.where(std > 0, std, 1.0).astype(np.float32)

    def tensors(index: np.ndarray) -> tuple[Tensor, Tensor]:
        return (torch.from_numpy(np.ascontiguousarray(x[index], dtype=np.float32)),
                torch.from_numpy(raw.y[index].astype(np.int64)))

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = tensors(train), tensors(val), tensors(test)
    return Dataset(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test,
                   n_classes=len(raw.class_names), input_shape=tuple(raw.x.shape[1:]), kind=raw.kind)
