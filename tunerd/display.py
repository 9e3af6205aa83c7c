"""How numbers and configurations read in what tunerd prints (the end of a run, `show`, the progress view):
4 significant digits, so `lr=0.01221`, not `lr=0.012211617043979647`. Files and `--json` keep every digit."""
from __future__ import annotations

import json
from typing import Any

#: significant digits of a printed float
DIGITS = 4


def number(value: Any) -> str:
    """A float at 4 significant digits (`0.01221`, `0.2`); anything else as it is (`None` as `-`)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{DIGITS}g}"
    return str(value)


def score(value: Any) -> str:
    """A metric's value at 4 significant digits, trailing zeros kept so that a column lines up (`0.7000`);
    a count (an int: `params`, `n_features`, bytes) whole (`12330`)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):#.{DIGITS}g}"
    return number(value)


def rounded(value: Any) -> Any:
    """`value` with every float in it cut to 4 significant digits (for printing a config as JSON)."""
    if isinstance(value, float):
        return float(f"{value:.{DIGITS}g}")
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item) for item in value]
    return value


def config_text(config: dict[str, Any]) -> str:
    """A configuration as one line of JSON, keys sorted, floats at 4 significant digits."""
    return json.dumps(rounded(config), sort_keys=True, default=str)
