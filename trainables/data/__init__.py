"""Data for the built-ins: sources (built-in sets), user (a user's files), text (tokens and vocabulary),
spec (the `data:` section) and dataset (splits, folds, tensors).

Preparation is kept apart from the training loop (and augmentation, `trainables.augment`) so that new
sources or formats change this package only.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from trainables.data.dataset import (SPLITS, BuildOptions, Dataset, Origin, build_dataset, cap_training,
                                     select_classes, split_indices)
from trainables.data.sources import SOURCES, RawData
from trainables.data.spec import DATA_KEYS, DataSpec
from trainables.data.text import PAD, PAD_ID, UNK, UNK_ID, build_vocab, encode_texts, encode_tokens, tokenize
from trainables.data.user import load_user_data


def load_dataset(data: Mapping[str, Any], seed: int, *, vocab_size: int = 20000, max_len: int = 200) -> Dataset:
    """The data set `data` names (a built-in `name` or a user's `path`), split with `seed` (the same seed
    gives every trial the same split). `vocab_size` and `max_len` shape text encoding (the `rnn` knobs)
    and are ignored for other kinds. With `folds` >= 2 in `data`, call `.folds(k, seed)` on the result."""
    spec = DataSpec.from_dict(data)
    raw = read_raw(spec)
    train, val, test = split_indices(raw.y, spec.val_fraction, spec.test_fraction, seed)
    options = BuildOptions(vocab_size=vocab_size, max_len=max_len, train_size=spec.train_size, seed=seed)
    return build_dataset(raw, train, val, test, options=options)


def read_raw(spec: DataSpec) -> RawData:
    """The whole labelled set a spec describes, before splitting: source, class filter, flip setting."""
    raw = SOURCES[spec.name]() if spec.name is not None else load_user_data(spec)
    if spec.classes is not None:
        raw = select_classes(raw, spec.classes)
    if spec.flips is not None:
        if spec.flips and raw.kind != "image":
            raise ValueError(f"data.flips: only images can be flipped, and this data is {raw.kind}, got True")
        raw = replace(raw, flips=spec.flips)
    return raw


__all__ = ["DATA_KEYS", "PAD", "PAD_ID", "SOURCES", "SPLITS", "UNK", "UNK_ID", "BuildOptions", "DataSpec",
           "Dataset", "Origin", "RawData", "build_dataset", "build_vocab", "cap_training", "encode_texts",
           "encode_tokens", "load_dataset", "load_user_data", "read_raw", "select_classes",
           "split_indices", "tokenize"]
