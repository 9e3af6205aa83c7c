"""Small checks and messages shared by every configuration (the knobs, the `data:` section, and tunerd's
experiment file), so each error names the key, the value and the rule the same way everywhere.

This is the lowest layer: it imports neither torch nor tunerd, and tunerd's spec checker uses it too.
"""
from __future__ import annotations

import difflib
import numbers
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import ValidationError

T = TypeVar("T")

_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = _BRIEF.maxlong = 80
_BRIEF.maxlist = _BRIEF.maxtuple = _BRIEF.maxdict = 6
_BRIEF.maxlevel = 2


def brief(value: Any) -> str:
    """`repr(value)` cut short: a value in a message must not be bigger than the file (YAML aliases)."""
    return _BRIEF.repr(value)


def require(ok: bool, name: str, value: Any, rule: str) -> None:
    """Raise `ValueError("name: rule, got value")` unless `ok`."""
    if not ok:
        raise ValueError(f"{name}: {rule}, got {value!r}")


def require_choice(name: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    require(value in choices, name, value, f"must be one of {', '.join(choices)}")


def did_you_mean(word: Any, candidates: Iterable[Any]) -> str:
    """' (did you mean 'lr'?)' when a candidate is close to `word`, else ''."""
    if not isinstance(word, str) or len(word) > 100:
        return ""
    close = difflib.get_close_matches(word, [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class FieldProblem(ValueError):
    """A rule between keys broken, naming the key to blame (raised by the validators of pydantic models, so
    the message says `data.folds: ...` rather than the model's name)."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(message)
        self.key = key  # None: the rule is about the whole mapping


def key_path(loc: Sequence[Any]) -> str:
    """pydantic's error location as a key path: `("search", "initial_points", 0, "lr")` ->
    `search.initial_points[0].lr`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def pydantic_problems(error: ValidationError, *, prefix: str = "",
                      keys_of: Callable[[tuple[Any, ...]], Sequence[str]]) -> list[tuple[str, str]]:
    """Each error of a pydantic ValidationError as (key path, message a user can act on).

    `keys_of(location)` lists the keys the mapping at `location` allows (for "unknown key" messages).
    """
    found = []
    for item in error.errors():
        loc = tuple(item["loc"])
        value, kind = item.get("input"), item["type"]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            loc, message = (*loc, cause.key) if cause.key else loc, str(cause)
        elif kind == "value_error" and cause is not None:
            message = str(cause)
        elif kind == "extra_forbidden":
            keys = list(keys_of(loc[:-1]))
            message = f"unknown key{did_you_mean(loc[-1], keys)}; allowed: {', '.join(keys)}"
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "literal_error":
            options = re.findall(r"'([^']*)'", item["ctx"]["expected"])
            message = f"must be one of {', '.join(options)}; got {brief(value)}{did_you_mean(value, options)}"
        elif kind in ("model_type", "dict_type"):
            message = f"must be a mapping, got {type(value).__name__} {brief(value)}"
        else:
            message = f"{item['msg'][0].lower()}{item['msg'][1:]}, got {brief(value)}"
        found.append((key_path((prefix, *loc) if prefix else loc), message))
    return found


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
