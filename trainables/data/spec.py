"""The `data:` section of an experiment file for the built-ins: the one model `tunerd validate` checks and
every trial reads (`DataSpec.from_dict`), so a file that validates loads the same way in every trial.

No torch and no data library here; reading a user's file to check it is `trainables.data.raw.read_raw`.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from trainables.data.sources import DATA_KINDS
from trainables.validation import FieldProblem, brief, did_you_mean, pydantic_problems

#: the set a file that names neither `name` nor `path` trains on (SPEC §1)
DEFAULT_DATASET = "digits"
#: at least this share of the data is left for training
MIN_TRAIN_FRACTION = 0.1
#: validation context of a user's own trainable: the keys it shares with the built-ins keep their types and
#: ranges, but what a name or a path means is the trainable's business
OWN_TRAINABLE = {"own_trainable": True}


def _own(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("own_trainable"))


class DataSpec(BaseModel):
    """Which data (a built-in `name` or a user's `path`) and how it is split.

    Fractions are of the whole set: 0.2 / 0.2 leaves 0.6 for training. `folds` >= 2 asks for k-fold
    cross-validation over train + val (0: one split). `train_size` caps the training split (a stratified,
    seeded sample). `flips` overrides whether flipping an image keeps its label. A `path` is made absolute:
    trials may run in another folder.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    name: str | None = None
    path: str | None = None
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    folds: int = Field(0, ge=0)
    classes: list[int | str] | None = Field(None, min_length=2)
    text_column: str | None = None
    label_column: str | None = None
    train_size: int | None = Field(None, ge=2)
    flips: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_set(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, Mapping) and data.get("name") is None and data.get("path") is None and not _own(info):
            return {**data, "name": DEFAULT_DATASET}
        return data

    @field_validator("name")
    @classmethod
    def _known_set(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is not None and name not in DATA_KINDS and not _own(info):
            raise ValueError(f"unknown data set {brief(name)}{did_you_mean(name, DATA_KINDS)}; built-in: "
                             f"{', '.join(DATA_KINDS)} (or data.path to your own file)")
        return name

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        if path is None:
            return None
        if not path.strip():
            raise ValueError("must name a file or folder")
        try:
            return str(Path(path).expanduser().resolve())
        except (OSError, RuntimeError, ValueError) as exc:  # a NUL byte, `~user` of no user
            raise ValueError(f"{brief(path)} is not a usable path ({exc})") from None

    @model_validator(mode="after")
    def _rules_between_keys(self, info: ValidationInfo) -> DataSpec:
        if _own(info):
            return self
        if self.name is not None and self.path is not None:
            raise FieldProblem(None, "give either name (a built-in data set) or path (your own data), not both")
        if self.folds == 1:
            raise FieldProblem("folds", "one fold is no cross-validation: use 0 (off) or k >= 2")
        if self.val_fraction + self.test_fraction > 1 - MIN_TRAIN_FRACTION:
            raise FieldProblem("test_fraction", f"val_fraction + test_fraction must leave at least "
                                                f"{MIN_TRAIN_FRACTION:.0%} for training, got {self.val_fraction} + "
                                                f"{self.test_fraction}")
        for key in ("text_column", "label_column"):
            if getattr(self, key) is not None and self.path is None:
                raise FieldProblem(key, "only applies to your own .csv file (data.path)")
        if self.text_column is not None and self.label_column is None:
            raise FieldProblem("label_column", "is required with data.text_column: name the column holding the "
                                               "labels")
        if self.flips and self.name is not None and DATA_KINDS[self.name] != "image":
            raise FieldProblem("flips", f"only images can be flipped, and {self.name} is {DATA_KINDS[self.name]} "
                                        "data")
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSpec:
        """The spec a trial reads; a key set to None takes its default (a spec dumped with its unset keys).
        A ValueError names every problem as `data.KEY: ...`, as `tunerd validate` does."""
        try:
            return cls.model_validate({key: value for key, value in data.items() if value is not None})
        except ValidationError as exc:
            problems = pydantic_problems(exc, prefix="data", keys_of=lambda loc: tuple(cls.model_fields))
            raise ValueError("; ".join(f"{path}: {message}" for path, message in problems)) from None

    def as_dict(self) -> dict[str, Any]:
        """What a trial is handed (`TrialContext.data`, a checkpoint's record): the keys that are set."""
        return self.model_dump(mode="json", exclude_none=True)


#: every `data:` key the built-in trainables understand
DATA_KEYS = tuple(DataSpec.model_fields)
