"""The search space: the `space:` mapping parsed into typed nodes.

A mapping with exactly one distribution key is a node (`Distribution`, `Choice`, `Grid`); any other mapping
is a nested group; anything else is a constant. Parsing happens once, at the edge, and collects every
problem with its key path; past this module the rest of tunerd trusts the nodes. Each search backend
translates the nodes to its library in one place of its own (`tunerd/searchers/`); nothing here imports Ray.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunerd.errors import Problem, UsageError, brief

#: distribution key -> number of numeric arguments
NUMERIC_KINDS: dict[str, int] = {
    "uniform": 2,
    "quniform": 3,
    "loguniform": 2,
    "qloguniform": 3,
    "randint": 2,
    "qrandint": 3,
    "lograndint": 2,
    "normal": 2,
}
LIST_KINDS = ("choice", "grid")
KINDS = (*NUMERIC_KINDS, *LIST_KINDS)
INTEGER_KINDS = ("randint", "qrandint", "lograndint")
LOG_KINDS = ("loguniform", "qloguniform", "lograndint")

#: parameter names are plain identifiers: `/` is hyperopt's path separator and `.` is `--set`'s
PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Distribution:
    """A numeric distribution, bounds as written in the file (integer bounds inclusive)."""

    kind: str
    args: tuple[float, ...]
    path: str

    @property
    def low(self) -> float:
        return self.args[0]

    @property
    def high(self) -> float:
        return self.args[1]

    @property
    def q(self) -> float | None:
        return self.args[2] if len(self.args) == 3 else None

    @property
    def is_integer(self) -> bool:
        return self.kind in INTEGER_KINDS

    @property
    def is_log(self) -> bool:
        return self.kind in LOG_KINDS


@dataclass(frozen=True)
class Choice:
    """One of `options`; an option that is a dict is a conditional sub-space (parsed nodes inside)."""

    options: tuple[Any, ...]
    path: str


@dataclass(frozen=True)
class Grid:
    """Every value is tried, crossed with the other grid axes."""

    values: tuple[Any, ...]
    path: str


Node = Distribution | Choice | Grid


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite(value: int | float) -> bool:
    """math.isfinite, False for an int too big for a float (a Python dict handed to `validate` can hold 10**400)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_searched(raw: Any) -> bool:
    """A raw `space:` value that names a distribution, a choice or a grid (`{loguniform: [...]}`), not a
    constant or a group (as `parse_space` reads a valid file)."""
    return isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in KINDS


def parse_space(raw: Any, path: str, problems: list[Problem]) -> Any:
    """Turn the raw YAML value at `path` into nodes, groups and constants, appending any problems."""
    if isinstance(raw, dict):
        kinds = [k for k in raw if k in KINDS]
        if kinds and len(raw) == 1:
            kind = kinds[0]
            return _parse_node(kind, raw[kind], f"{path}.{kind}", problems)
        if kinds:
            others = sorted(str(k) for k in raw if k not in KINDS)
            problems.append(Problem(path, f"a distribution mapping must have exactly one key; "
                                          f"'{kinds[0]}' is mixed with {others}"))
            return None
        group = {}
        for key, value in raw.items():
            if not isinstance(key, str) or not PARAMETER_NAME.fullmatch(key):
                problems.append(Problem(f"{path}.{key}", f"parameter names must match {PARAMETER_NAME.pattern[1:-1]} "
                                        "(no '/', '.', spaces or control characters)"))
                continue
            group[key] = parse_space(value, f"{path}.{key}", problems)
        return group
    if isinstance(raw, float) and not math.isfinite(raw):
        problems.append(Problem(path, f"constant must be finite, got {raw}"))
    return raw


def _parse_node(kind: str, args: Any, path: str, problems: list[Problem]) -> Node | None:
    if kind in LIST_KINDS:
        if not isinstance(args, list) or not args:
            problems.append(Problem(path, f"must be a non-empty list of values, got {brief(args)}"))
            return None
        values = tuple(parse_space(v, f"{path}[{i}]", problems) for i, v in enumerate(args))
        for i, value in enumerate(values):
            if isinstance(value, (Distribution, Choice, Grid)):
                problems.append(Problem(f"{path}[{i}]", f"an option cannot itself be a distribution; name it in a "
                                                        f"sub-space instead, e.g. "
                                                        f"{{x: {{{value.path.rsplit('.', 1)[-1]}: ...}}}}"))
        return Choice(values, path) if kind == "choice" else Grid(values, path)

    count = NUMERIC_KINDS[kind]
    shape = "[lo, hi, q]" if count == 3 else ("[mean, sd]" if kind == "normal" else "[lo, hi]")
    if not isinstance(args, list) or len(args) != count or not all(_is_number(a) for a in args):
        problems.append(Problem(path, f"must be a list of {count} numbers {shape}, got {brief(args)}"))
        return None
    if not all(_is_finite(a) for a in args):
        problems.append(Problem(path, f"numbers must be finite, got {brief(args)}"))
        return None
    before = len(problems)
    if kind == "normal":
        if args[1] <= 0:
            problems.append(Problem(path, f"standard deviation must be > 0, got {args[1]}"))
    else:
        lo, hi = args[0], args[1]
        if kind in INTEGER_KINDS and not all(float(a).is_integer() for a in args):
            which = "bounds and q" if count == 3 else "bounds"
            problems.append(Problem(path, f"{which} must be integers, got {brief(args)}"))
        if kind in LOG_KINDS and lo <= 0:
            problems.append(Problem(path, f"lower bound must be > 0 (log scale), got {lo}"))
        if kind == "lograndint" and lo < 1:
            problems.append(Problem(path, f"lower bound must be >= 1 for an integer log scale, got {lo}"))
        if lo > hi or (lo == hi and kind not in INTEGER_KINDS):
            problems.append(Problem(path, f"lower bound must be < upper bound, got [{lo}, {hi}]"))
        if count == 3:
            q = args[2]
            if q <= 0:
                problems.append(Problem(path, f"q must be > 0, got {q}"))
            elif q > hi - lo and not (kind in INTEGER_KINDS and lo == hi):
                problems.append(Problem(path, f"q ({q}) is larger than the range [{lo}, {hi}]"))
    if len(problems) > before:
        return None
    if kind in INTEGER_KINDS:
        args = [int(a) for a in args]
    return Distribution(kind, tuple(args), path)


def iter_nodes(tree: Any) -> Iterator[Node]:
    """Every node in the tree, sub-spaces of choices and grids included."""
    if isinstance(tree, (Distribution,)):
        yield tree
    elif isinstance(tree, (Choice, Grid)):
        yield tree
        for option in (tree.options if isinstance(tree, Choice) else tree.values):
            yield from iter_nodes(option)
    elif isinstance(tree, dict):
        for value in tree.values():
            yield from iter_nodes(value)


def grid_size(tree: Any, *, choices_are_grid: bool) -> int:
    """How many configurations the grid axes (and, for grid search, the choices) multiply into."""
    if isinstance(tree, dict):
        return math.prod(grid_size(v, choices_are_grid=choices_are_grid) for v in tree.values())
    if isinstance(tree, Grid) or (choices_are_grid and isinstance(tree, Choice)):
        items = tree.values if isinstance(tree, Grid) else tree.options
        return sum(grid_size(v, choices_are_grid=choices_are_grid) for v in items)
    return 1


def option_index(node: Choice | Grid, value: Any) -> int | None:
    """Which option of a choice (or value of a grid axis) `value` is: equal to a plain option, or a (partial)
    mapping whose keys and constants fit a sub-space option."""
    for i, option in enumerate(node.options if isinstance(node, Choice) else node.values):
        if isinstance(option, dict) and isinstance(value, dict):
            constants = {k: v for k, v in option.items() if not isinstance(v, (Distribution, Choice, Grid, dict))}
            if set(value) <= set(option) and all(value.get(k, v) == v for k, v in constants.items()):
                return i
        elif not isinstance(option, dict) and option == value and type(option) is type(value):
            return i
    return None


def labelled_point(point: dict[str, Any], tree: dict[str, Any], label: Callable[[str, str], str],
                   encode: Callable[[Distribution, Any], Any] = lambda node, value: value,
                   prefix: str = "") -> dict[str, Any]:
    """A point (whole or partial) as `{label: value}`, for a backend that names each parameter by its path
    (`label(prefix, key)`; a conditional option's parameters under `label(choice, index)`), takes a
    choice's value as its option index and a distribution's as `encode(node, value)`: the walk the hyperopt
    and Optuna adapters share, each with its own way of joining a path."""
    labels: dict[str, Any] = {}
    for key, value in point.items():
        node, name = tree[key], label(prefix, key)
        if isinstance(node, dict):
            labels.update(labelled_point(value, node, label, encode, name))
        elif isinstance(node, (Choice, Grid)):
            index = option_index(node, value)
            if index is None:
                raise UsageError(f"search.initial_points: {value!r} is not one of the options of {node.path}")
            labels[name] = index
            option = (node.options if isinstance(node, Choice) else node.values)[index]
            if isinstance(option, dict):
                labels.update(labelled_point(value, option, label, encode, label(name, str(index))))
        elif isinstance(node, Distribution):
            labels[name] = encode(node, value)
    return labels


def complete_point(point: dict[str, Any], tree: dict[str, Any], rng: np.random.RandomState) -> dict[str, Any]:
    """`point` with every parameter it leaves out sampled from `tree` (for searchers that need whole points).

    Raises ValueError when a given value is not one of a choice's options.
    """
    complete: dict[str, Any] = {}
    for key, node in tree.items():
        if key not in point:
            complete[key] = sample(node, rng)
            continue
        given = point[key]
        if isinstance(node, Choice):
            index = option_index(node, given)
            if index is None:
                raise ValueError(f"{brief(given)} is not one of the options of {node.path}")
            option = node.options[index]
            complete[key] = complete_point(given, option, rng) if isinstance(option, dict) else given
        elif isinstance(node, dict) and isinstance(given, dict):
            complete[key] = complete_point(given, node, rng)
        else:
            if isinstance(node, Distribution):
                check_value(node, given)
            complete[key] = given
    return complete


def check_value(node: Distribution, value: Any) -> None:
    """Raise ValueError unless `value` is one the distribution can produce (for given initial points)."""
    if not _is_number(value):
        raise ValueError(f"{brief(value)} is not a number ({node.path})")
    if node.is_integer and not float(value).is_integer():
        raise ValueError(f"{brief(value)} is not an integer ({node.path})")
    if node.kind != "normal" and not node.low <= value <= node.high:
        raise ValueError(f"{brief(value)} is outside [{node.low}, {node.high}] ({node.path})")


def sample(node: Any, rng: np.random.RandomState) -> Any:
    """One random value of a node (a whole sub-space for a mapping option), as the file defines it: integer
    bounds inclusive, q-kinds rounded to a multiple of q inside the bounds, log-kinds uniform in log space."""
    if isinstance(node, Distribution):
        return _sample_number(node, rng)
    if isinstance(node, (Choice, Grid)):
        options = node.options if isinstance(node, Choice) else node.values
        option = options[rng.randint(len(options))]
        return complete_point({}, option, rng) if isinstance(option, dict) else option
    if isinstance(node, dict):
        return complete_point({}, node, rng)
    return node


def _sample_number(node: Distribution, rng: np.random.RandomState) -> int | float:
    lo, hi, q = node.low, node.high, node.q
    if node.kind == "normal":
        return float(rng.normal(lo, hi))
    if node.kind == "randint":
        return int(rng.randint(lo, hi + 1))
    if node.kind == "lograndint":
        return int(min(hi, math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1))))))
    if node.kind == "qrandint":
        steps = np.arange(math.ceil(lo / q), math.floor(hi / q) + 1) * q
        return int(steps[rng.randint(len(steps))])
    value = math.exp(rng.uniform(math.log(lo), math.log(hi))) if node.is_log else rng.uniform(lo, hi)
    return quantize(value, q, lo, hi) if q is not None else float(value)


def quantize(x: float, q: float, lo: float, hi: float) -> float:
    """The multiple of q nearest to x that lies inside [lo, hi] (space validation guarantees one exists)."""
    k = min(max(round(x / q), math.ceil(lo / q - 1e-9)), math.floor(hi / q + 1e-9))
    return float(round(k * q, 10 - math.floor(math.log10(q))))  # drop float noise: 3 * 0.1 -> 0.3


def flatten(config: dict, sep: str = "/", prefix: str = "") -> dict[str, Any]:
    """`{"a": {"b": 1}}` -> `{"a/b": 1}`: hyperopt's keys for nested points, TensorBoard's hparam names."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, sep, name))
        else:
            flat[name] = value
    return flat
