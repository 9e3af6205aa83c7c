"""Where built-in data comes from: each source returns the whole labelled set as numpy arrays, unsplit."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn import datasets as sk


@dataclass(frozen=True)
class RawData:
    """A labelled set before splitting: `y` holds labels 0..k-1 and `class_names[label]` names each."""

    x: np.ndarray
    y: np.ndarray
    kind: str  # "image" (N, C, H, W) or "tabular" (N, F)
    class_names: tuple[str, ...]


def _digits() -> RawData:
    bunch = sk.load_digits()
    # pixel intensities are 0..16; images keep their (1, 8, 8) shape so the cnn sees the grid
    x = (bunch.images / 16.0)[:, None, :, :]
    return RawData(x, bunch.target, "image", tuple(str(n) for n in bunch.target_names))


def _tabular(loader: Callable[[], object]) -> Callable[[], RawData]:
    def load() -> RawData:
        bunch = loader()
        return RawData(bunch.data, bunch.target, "tabular", tuple(str(n) for n in bunch.target_names))
    return load


#: built-in data sets by name; all ship with scikit-learn, so nothing touches the network
SOURCES: dict[str, Callable[[], RawData]] = {
    "digits": _digits,
    "wine": _tabular(sk.load_wine),
    "breast_cancer": _tabular(sk.load_breast_cancer),
}
