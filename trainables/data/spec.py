"""The `data:` section of the experiment file, checked once into a typed object."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from trainables.data.sources import SOURCES
from trainables.validation import coerce, did_you_mean, require

#: keys owned by work not done yet; accepted so that a spec with the documented defaults runs
LATER_KEYS = ("folds", "path", "text_column", "label_column")
KEYS = ("name", "val_fraction", "test_fraction", "classes", *LATER_KEYS)


@dataclass(frozen=True, kw_only=True)
class DataSpec:
    """Which data set, and how it is split.

    Fractions are of the whole set: 0.2 / 0.2 leaves 0.6 for training.
    """

    name: str
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    classes: tuple[int | str, ...] | None = None

    def __post_init__(self) -> None:
        require(self.name in SOURCES, "data.name", self.name,
                f"must be a built-in data set ({', '.join(SOURCES)}){did_you_mean(str(self.name), SOURCES)}")
        require(0.0 < self.val_fraction < 1.0, "data.val_fraction", self.val_fraction, "must be in (0, 1)")
        require(0.0 <= self.test_fraction < 1.0, "data.test_fraction", self.test_fraction, "must be in [0, 1)")
        require(self.val_fraction + self.test_fraction < 1.0, "data.val_fraction + data.test_fraction",
                self.val_fraction + self.test_fraction, "must leave some data to train on (< 1)")
        if self.classes is not None:
            require(len(self.classes) >= 2, "data.classes", self.classes, "must keep at least 2 classes")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSpec:
        for key in data:
            if key not in KEYS:
                raise ValueError(f"unknown data key {key!r}{did_you_mean(str(key), KEYS)}; "
                                 f"known keys: {', '.join(KEYS)}")
        if data.get("path") is not None:
            raise ValueError("data.path: user data sets are not supported yet; use data.name "
                             f"({', '.join(SOURCES)})")
        folds = data.get("folds") or 0
        require(folds in (0, 1), "data.folds", folds, "k-fold cross-validation is not supported yet (use 0)")
        require("name" in data, "data.name", None, f"is required ({', '.join(SOURCES)})")
        values: dict[str, Any] = {"name": data["name"]}
        for key in ("val_fraction", "test_fraction"):
            if key in data:
                values[key] = coerce(f"data.{key}", data[key], "float")
        if data.get("classes") is not None:
            values["classes"] = tuple(data["classes"])
        return cls(**values)
