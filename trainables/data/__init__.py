"""Data for the built-ins: sources (where it comes from), spec (the `data:` section) and dataset (splits).

Preparation is kept apart from the training loop so that new sources, k-fold splits or augmentation
change this package only.
"""
from __future__ import annotations

from typing import Any, Mapping

from trainables.data.dataset import SPLITS, Dataset, build_dataset, select_classes, split_indices
from trainables.data.sources import SOURCES, RawData
from trainables.data.spec import DataSpec


def load_dataset(data: Mapping[str, Any], seed: int) -> Dataset:
    """The data set `data` names, split with `seed` (the same seed gives every trial the same split)."""
    spec = DataSpec.from_dict(data)
    raw = SOURCES[spec.name]()
    if spec.classes is not None:
        raw = select_classes(raw, spec.classes)
    return build_dataset(raw, *split_indices(raw.y, spec.val_fraction, spec.test_fraction, seed))


__all__ = ["SOURCES", "SPLITS", "DataSpec", "Dataset", "RawData", "build_dataset", "load_dataset",
           "select_classes", "split_indices"]
