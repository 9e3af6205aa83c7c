"""Small checks shared by every configuration dataclass, so each error names the knob, the value and the rule."""
from __future__ import annotations

import difflib
import numbers
from dataclasses import fields
from typing import Any, Iterable, Mapping, TypeVar

T = TypeVar("T")


def require(ok: bool, name: str, value: Any, rule: str) -> None:
    """Raise `ValueError("name: rule, got value")` unless `ok`."""
    if not ok:
        raise ValueError(f"{name}: {rule}, got {value!r}")


def require_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    require(value in choices, name, value, f"must be one of {', '.join(choices)}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'lr'?)' when something close exists, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def coerce(name: str, value: Any, annotation: str) -> Any:
    """`value` as the plain Python type a dataclass field declares.

    Searchers hand back numpy scalars and floats for integers (`quniform`, bayes_opt); converting here keeps
    the configs, checkpoints and JSON exports free of numpy types and integer knobs integral.
    """
    optional = annotation.replace(" ", "").endswith("|None")
    base = annotation.split("|")[0].strip()
    if value is None:
        require(optional, name, value, f"must be a {base}")
        return None
    if base == "bool":
        if not isinstance(value, str) and value in (0, 1):  # numpy bools and 0/1 from numeric searchers
            return bool(value)
        raise ValueError(f"{name}: must be true or false, got {value!r}")
    if base in ("int", "float"):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        require(ok, name, value, f"must be a number ({base})")
        if base == "float":
            return float(value)
        require(float(value).is_integer(), name, value, "must be an integer")
        return int(value)
    if base == "str":
        require(isinstance(value, str), name, value, "must be a string")
        return str(value)
    return value


def from_knobs(cls: type[T], knobs: Mapping[str, Any]) -> T:
    """Build dataclass `cls` from the knobs that name its fields (others are left for other configs)."""
    values = {f.name: coerce(f.name, knobs[f.name], str(f.type)) for f in fields(cls) if f.name in knobs}
    return cls(**values)
