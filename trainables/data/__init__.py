"""Data for the built-ins: sources (built-in sets), user (a user's files), raw (a spec read into one labelled
set), text (tokens and vocabulary), spec (the `data:` section) and dataset (splits, folds, tensors).

Preparation is kept apart from the training loop (and augmentation, `trainables.augment`) so that new
sources or formats change this package only. Names are imported on first use: the spec and the sources
load without torch (`tunerd validate` reads them), the tensors with it.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from trainables.lazy import lazy_exports

#: name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(("SPLITS", "BuildOptions", "Dataset", "Origin", "build_dataset", "cap_training",
                     "split_indices"), "trainables.data.dataset"),
    **dict.fromkeys(("SOURCES", "DATA_KINDS", "RawData"), "trainables.data.sources"),
    **dict.fromkeys(("DATA_KEYS", "DataSpec"), "trainables.data.spec"),
    **dict.fromkeys(("read_raw", "select_classes"), "trainables.data.raw"),
    **dict.fromkeys(("PAD", "PAD_ID", "UNK", "UNK_ID", "build_vocab", "encode_texts", "encode_tokens", "tokenize"),
                    "trainables.data.text"),
    "load_user_data": "trainables.data.user",
}

if TYPE_CHECKING:
    from trainables.data.dataset import Dataset


def load_dataset(data: Mapping[str, Any], seed: int, *, vocab_size: int = 20000, max_len: int = 200) -> Dataset:
    """The data set `data` names (a built-in `name` or a user's `path`), split with `seed` (the same seed
    gives every trial the same split). `vocab_size` and `max_len` shape text encoding (the `rnn` knobs)
    and are ignored for other kinds. With `folds` >= 2 in `data`, call `.folds(k, seed)` on the result."""
    from trainables.data.dataset import BuildOptions, build_dataset, split_indices
    from trainables.data.raw import read_raw
    from trainables.data.spec import DataSpec

    spec = DataSpec.from_dict(data)
    raw = read_raw(spec)
    train, val, test = split_indices(raw.y, spec.val_fraction, spec.test_fraction, seed)
    options = BuildOptions(vocab_size=vocab_size, max_len=max_len, train_size=spec.train_size, seed=seed)
    return build_dataset(raw, train, val, test, options=options)


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["load_dataset", *_EXPORTS]
