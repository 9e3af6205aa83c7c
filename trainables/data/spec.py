"""The `data:` section of the experiment file, checked once into a typed object."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from trainables.data.sources import SOURCES
from trainables.validation import coerce, did_you_mean, require

#: every `data:` key the built-in trainables understand (the spec checker uses this list too)
DATA_KEYS = ("name", "path", "val_fraction", "test_fraction", "folds", "classes", "text_column", "label_column",
             "train_size", "flips")
_TYPES = {"name": "str", "path": "str", "val_fraction": "float", "test_fraction": "float", "folds": "int",
          "text_column": "str", "label_column": "str", "train_size": "int", "flips": "bool"}


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    """Which data (a built-in `name` or a user's `path`) and how it is split.

    Fractions are of the whole set: 0.2 / 0.2 leaves 0.6 for training. `folds` >= 2 asks for k-fold
    cross-validation over train + val (0 and 1 mean a single split). `train_size` caps the training
    split (a stratified, seeded sample). `flips` overrides whether flipping an image keeps its label.
    """

    name: str | None = None
    path: str | None = None
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    folds: int = 0
    classes: tuple[int | str, ...] | None = None
    text_column: str | None = None
    label_column: str | None = None
    train_size: int | None = None
    flips: bool | None = None

    def __post_init__(self) -> None:
        require(self.name is None or self.path is None, "data.name / data.path", (self.name, self.path),
                "give one of them, not both")
        require(self.name is not None or self.path is not None, "data.name", None,
                f"is required: a built-in ({', '.join(SOURCES)}) or data.path to your own file")
        if self.name is not None:
            require(self.name in SOURCES, "data.name", self.name,
                    f"must be a built-in data set ({', '.join(SOURCES)}){did_you_mean(str(self.name), SOURCES)}")
        if self.path is not None:
            require(self.path.strip() != "", "data.path", self.path, "must not be empty")
        require(0.0 < self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "must be in (0, 1)")
        require(0.0 <= self.test_fraction < 1.0, "data.test_fraction", self.test_fraction, "must be in [0, 1)")
        require(self.val_fraction + self.test_fraction < 1.0, "data.val_fraction + data.test_fraction",
                self.val_fraction + self.test_fraction, "must leave some data to train on (< 1)")
        require(self.folds >= 0, "data.folds", self.folds, "must be >= 0 (0 or 1: one split; k >= 2: k folds)")
        if self.classes is not None:
            require(len(self.classes) >= 2, "data.classes", self.classes, "must keep at least 2 classes")
        if self.train_size is not None:
            require(self.train_size >= 2, "data.train_size", self.train_size, "must be >= 2")
        for key in ("text_column", "label_column"):
            require(getattr(self, key) is None or self.path is not None, f"data.{key}", getattr(self, key),
                    "only applies to your own .csv file (data.path)")
        require(self.text_column is None or self.label_column is not None, "data.label_column", None,
                "is required with data.text_column: name the column holding the labels")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSpec:
        for key in data:
            if key not in DATA_KEYS:
                raise ValueError(f"unknown data key {key!r}{did_you_mean(str(key), DATA_KEYS)}; "
                                 f"known keys: {', '.join(DATA_KEYS)}")
        # None means "not given" (a spec dumped with its unset keys), so the default applies
        values: dict[str, Any] = {key: coerce(f"data.{key}", data[key], kind)
                                  for key, kind in _TYPES.items() if data.get(key) is not None}
        if data.get("classes") is not None:
            classes = data["classes"]
            require(isinstance(classes, (list, tuple)), "data.classes", classes, "must be a list of labels or names")
            values["classes"] = tuple(classes)
        return cls(**values)
