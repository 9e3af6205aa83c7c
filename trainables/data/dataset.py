"""From a raw labelled set to the in-memory tensors a trial trains on: class filter, split, training-sample
cap, scaling or text encoding, and k-fold cross-validation splits.

Whatever is fitted to data (tabular mean and std, the text vocabulary) is fitted on the training part only,
for the plain split and for every fold alike: `build_dataset` is the one place that does it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from torch import Tensor

from trainables.data.sources import RawData
from trainables.data.text import build_vocab, encode_tokens
from trainables.validation import require

SPLITS = ("train", "val", "test")


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    """How a split becomes tensors: text encoding (`vocab_size` counts `<pad>` and `<unk>`; ignored for
    other kinds) and the optional cap on training samples, drawn with `seed`."""

    vocab_size: int = 20000
    max_len: int = 200
    train_size: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.vocab_size >= 3, "vocab_size", self.vocab_size, "must be >= 3 (<pad>, <unk> and a word)")
        require(self.max_len >= 1, "max_len", self.max_len, "must be >= 1")
        require(self.train_size is None or self.train_size >= 2, "data.train_size", self.train_size, "must be >= 2")


@dataclass(frozen=True)
class Origin:
    """What a `Dataset` was built from, kept so `Dataset.folds` can re-split and refit (vocabulary, scaling)."""

    raw: RawData
    train: np.ndarray  # before the train_size cap
    val: np.ndarray
    test: np.ndarray
    options: BuildOptions


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """Train / val / test tensors held in memory, ready to index by batch.

    Inputs are float32 (images (N, C, H, W) in [0, 1], standardised tabular (N, F)) or, for text, int64
    token ids (N, max_len) with `vocab[id]` the token (0 `<pad>`, 1 `<unk>`); labels are int64 0..k-1,
    `class_names[label]` naming each. `flips`: horizontal flips keep image labels (augmentation may use them).
    `scaling`: for tabular data, the (mean, std) the features were standardised with (x - mean) / std, so a
    model can be moved to another split's scale; `origin`: what it was built from, for `folds`.
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: int
    input_shape: tuple[int, ...]
    kind: str  # "image" | "tabular" | "text"
    class_names: tuple[str, ...] = ()
    vocab: tuple[str, ...] | None = field(default=None, repr=False)
    flips: bool = False
    scaling: tuple[Tensor, Tensor] | None = field(default=None, repr=False)
    origin: Origin | None = field(default=None, repr=False, compare=False)

    def split(self, name: str) -> tuple[Tensor, Tensor]:
        """`(x, y)` of split `name` (train, val or test)."""
        require(name in SPLITS, "split", name, f"must be one of {', '.join(SPLITS)}")
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")

    def to(self, device: torch.device | str) -> Dataset:
        """The same data on `device`: the sets are small, so a trial keeps them there for every epoch."""
        tensors = {f.name: getattr(self, f.name).to(device) for f in fields(self)
                   if isinstance(getattr(self, f.name), Tensor)}
        scaling = None if self.scaling is None else tuple(t.to(device) for t in self.scaling)
        return replace(self, **tensors, scaling=scaling)

    def folds(self, k: int, seed: int) -> list[Dataset]:
        """k-fold cross-validation: train + val pooled and cut into `k` stratified folds (seeded); fold i
        validates on fold i and trains on the others. The test split is the same in every fold, and each
        fold refits scaling and vocabulary on its own training part (and applies `train_size` to it)."""
        require(isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 2, "data.folds", k,
                "must be an integer >= 2")
        require(self.origin is not None, "folds", k, "need a Dataset made by load_dataset or build_dataset")
        origin = self.origin
        pool = np.concatenate([origin.train, origin.val])
        try:
            cuts = list(StratifiedKFold(n_splits=int(k), shuffle=True, random_state=seed)
                        .split(pool, origin.raw.y[pool]))
        except ValueError as error:
            raise ValueError(f"data.folds: cannot cut {len(pool)} samples into {k} stratified folds: "
                             f"{error}") from error
        return [build_dataset(origin.raw, pool[train], pool[val], origin.test, options=origin.options)
                for train, val in cuts]


def split_indices(y: np.ndarray, val_fraction: float, test_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded stratified train / val / test indices; the test set is cut first, then val from the rest.

    Fractions are of the whole set, so val is `val_fraction / (1 - test_fraction)` of what is left.
    """
    rest = np.arange(len(y))
    test = np.array([], dtype=np.int64)
    try:
        if test_fraction > 0:
            rest, test = train_test_split(rest, test_size=test_fraction, stratify=y, random_state=seed)
        train, val = train_test_split(rest, test_size=val_fraction / (1.0 - test_fraction), stratify=y[rest],
                                      random_state=seed)
    except ValueError as error:  # too few samples of a class, or fewer in a split than classes
        counts = np.bincount(y)
        raise ValueError(f"data: cannot split {len(y)} samples ({len(counts)} classes, the smallest has "
                         f"{counts.min()}) into val_fraction {val_fraction} and test_fraction {test_fraction} "
                         f"with every class in every split: {error}") from error
    return train, val, test


def cap_training(train: np.ndarray, y: np.ndarray, train_size: int | None, seed: int) -> np.ndarray:
    """At most `train_size` of the `train` indices: a seeded sample with the classes in proportion."""
    if train_size is None or len(train) <= train_size:
        return train
    try:
        kept, _ = train_test_split(train, train_size=train_size, stratify=y[train], random_state=seed)
    except ValueError as error:
        raise ValueError(f"data.train_size: cannot draw a stratified sample of {train_size} from "
                         f"{len(train)} training samples: {error}") from error
    return np.sort(kept)


def build_dataset(raw: RawData, train: np.ndarray, val: np.ndarray, test: np.ndarray, *,
                  options: BuildOptions = BuildOptions()) -> Dataset:
    """Tensors for the given split. Tabular features are standardised and the text vocabulary is built
    with the (capped) training part only, so nothing about val or test leaks into training."""
    kept = cap_training(train, raw.y, options.train_size, options.seed)
    x, vocab, scaling = raw.x, None, None
    if raw.kind == "text":
        vocab = build_vocab(raw.x[kept], options.vocab_size)
    elif raw.kind == "tabular":
        x = x.astype(np.float32)
        mean, std = x[kept].mean(axis=0), x[kept].std(axis=0)
        std = np.where(std > 0, std, 1.0).astype(np.float32)  # a constant feature stays put
        x = (x - mean) / std
        scaling = (torch.from_numpy(mean), torch.from_numpy(std))

    def inputs(index: np.ndarray) -> Tensor:
        if vocab is not None:
            return encode_tokens(x[index], vocab, options.max_len)
        part = np.take(x, index, axis=0)  # a new array (x may be a read-only cache)
        if part.dtype == np.uint8:  # bytes are scaled per split, never the whole set at once
            part = part / np.float32(255.0)
        return torch.from_numpy(np.ascontiguousarray(part, dtype=np.float32))

    def labels(index: np.ndarray) -> Tensor:
        return torch.from_numpy(raw.y[index].astype(np.int64))

    input_shape = (options.max_len,) if vocab is not None else tuple(raw.x.shape[1:])
    return Dataset(x_train=inputs(kept), y_train=labels(kept), x_val=inputs(val), y_val=labels(val),
                   x_test=inputs(test), y_test=labels(test), n_classes=len(raw.class_names),
                   input_shape=input_shape, kind=raw.kind, class_names=raw.class_names, vocab=vocab,
                   flips=raw.kind == "image" and raw.flips, scaling=scaling,
                   origin=Origin(raw, train, val, test, options))
