"""Warm starts (`search.warm_start`): earlier experiments' trials enter a new search as observations.

Each entry names an earlier experiment: `NAME` in this experiment's storage, or `STORAGE/NAME` (a folder
or a URI such as `s3://bucket/results/NAME`). Its `summary.json` gives every trial's config and result (the
trial's best report, the one tunerd ranks it by); its `spec.yaml` gives the `data:` it ran on. They are
checked against the new experiment (the same objectives, modes and data, else an error naming both) and
each config is mapped onto the new space (`map_config`): knobs the new space no longer has are dropped,
knobs it adds are drawn from it (seeded) or take its constants, and a config with a value the new space
cannot produce is left out and counted. What each backend does with the observations is its own API
(`SearchAlgorithm.warm_starts`, `build`): none of them runs again as a trial or counts towards
`num_samples`.

Read once, when the file is validated (the problems carry the key path `search.warm_start[i]`); past that
the `Experiment` holds the observations. No Ray, no torch.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tunerd.errors import Problem, UsageError, brief
from tunerd.objectives import Goal, is_finite_number
from tunerd.space import Choice, Distribution, Grid, is_searched, quantize, sample
from tunerd.storage import is_uri, resolve_storage

if TYPE_CHECKING:
    from tunerd.spec import Experiment
    from tunerd.summary import Summary


@dataclass(frozen=True)
class Observation:
    """One earlier trial, as the new search sees it: a whole config of the new space, and the trial's result
    (its best report: every objective and constraint metric the new goal reads)."""

    config: dict[str, Any]
    result: dict[str, Any]

    def value(self, metric: str) -> float:
        return float(self.result[metric])


@dataclass(frozen=True)
class Source:
    """What one `search.warm_start` entry gave: counts for the launch line and `summary.json`."""

    name: str
    where: str
    observations: int
    #: configs with a value the new space cannot produce
    outside: int
    #: trials with no finite value of every objective (errored, diverged, never reported)
    left_out: int
    #: knobs of its configs the new space no longer has, and searched knobs it lacked (drawn from the new space)
    dropped: tuple[str, ...] = ()
    filled: tuple[str, ...] = ()

    def line(self) -> str:
        """What `launch` prints."""
        return f"warm start: {self.describe()}"

    def describe(self) -> str:
        notes = [f"{self.outside} outside the new space dropped"] if self.outside else []
        notes += [f"{self.left_out} without a result left out"] if self.left_out else []
        notes += [f"knobs dropped: {', '.join(self.dropped)}"] if self.dropped else []
        notes += [f"knobs filled from the new space: {', '.join(self.filled)}"] if self.filled else []
        plural = "" if self.observations == 1 else "s"
        return (f"{self.observations} observation{plural} from {self.name}"
                + (f" ({'; '.join(notes)})" if notes else ""))

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "where": self.where, "observations": self.observations, "outside": self.outside,
                "left_out": self.left_out, "dropped": list(self.dropped), "filled": list(self.filled)}


@dataclass(frozen=True)
class WarmStart:
    observations: tuple[Observation, ...]
    sources: tuple[Source, ...]

    def lines(self) -> list[str]:
        return [source.line() for source in self.sources]

    def record(self) -> list[dict[str, Any]]:
        """`summary.json`'s `warm_start`: one entry per source."""
        return [source.record() for source in self.sources]


class Outside(ValueError):
    """A config holds a value the new space cannot produce."""


@dataclass
class MapNotes:
    """What mapping the configs of one source found, beyond the configs themselves."""

    dropped: set[str] = field(default_factory=set)
    filled: set[str] = field(default_factory=set)
    #: constant key path -> (the earlier value, the new one)
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    #: key paths the earlier experiment searched (`searched_paths`): a config whose value of one the new space
    #: fixes at another value is outside it (the new space cannot produce it), not a changed setting
    searched_before: set[str] = field(default_factory=set)


def searched_paths(raw: Any, path: str = "space") -> set[str]:
    """The key paths a file's `space:` searches (a distribution, choice or grid), through groups."""
    found: set[str] = set()
    for key, value in (raw.items() if isinstance(raw, dict) else ()):
        here = f"{path}.{key}"
        if is_searched(value):
            found.add(here)
        elif isinstance(value, dict):
            found |= searched_paths(value, here)
    return found


def map_config(config: Mapping[str, Any], tree: dict[str, Any], rng: np.random.RandomState,
               found: MapNotes | None = None, path: str = "space") -> dict[str, Any]:
    """`config` (an earlier trial's) as a whole config of the space `tree`: keys the tree lacks dropped,
    keys the config lacks drawn from the tree, constants the tree's. Raises `Outside` when a value is one the
    tree's distribution or choice cannot produce."""
    found = found if found is not None else MapNotes()
    mapped: dict[str, Any] = {}
    for key, node in tree.items():
        here = f"{path}.{key}"
        if key not in config:
            mapped[key] = sample(node, rng)
            if isinstance(node, (Distribution, Choice, Grid, dict)):
                found.filled.add(here)
            continue
        value = config[key]
        if isinstance(node, Distribution):
            mapped[key] = _number(node, value, here)
        elif isinstance(node, Choice):
            mapped[key] = _option(node, value, rng, found, here)
        elif isinstance(node, Grid):
            raise Outside(f"{here}: a grid axis takes no observations")
        elif isinstance(node, dict):
            if not isinstance(value, dict):
                raise Outside(f"{here}: {brief(value)} is not a group of parameters")
            mapped[key] = map_config(value, node, rng, found, here)
        else:
            if not _same(value, node):
                if here in found.searched_before:  # e.g. `tunerd analyze --write` fixed it at the best value
                    raise Outside(f"{here}: {brief(value)}, where the new space fixes {brief(node)}")
                found.changed.setdefault(here, (value, node))
            mapped[key] = node
    found.dropped.update(f"{path}.{key}" for key in config if key not in tree)
    return mapped


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps True apart from 1 (YAML values can mix them)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _number(node: Distribution, value: Any, here: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Outside(f"{here}: {brief(value)} is not a number")
    lo, hi = (node.low - 3 * node.high, node.low + 3 * node.high) if node.kind == "normal" else (node.low, node.high)
    if not lo <= value <= hi:  # normal: the box every backend searches (mean +- 3 sd)
        raise Outside(f"{here}: {value!r} is outside [{lo}, {hi}]")
    if node.is_integer and not float(value).is_integer():
        raise Outside(f"{here}: {value!r} is not an integer")
    if node.q is not None and not math.isclose(quantize(value, node.q, lo, hi), value, rel_tol=1e-9, abs_tol=1e-12):
        raise Outside(f"{here}: {value!r} is not a multiple of {node.q}")
    return int(value) if node.is_integer else value


def _option(node: Choice, value: Any, rng: np.random.RandomState, found: MapNotes, here: str) -> Any:
    """The option `value` is: a plain option equal to it, or a sub-space whose constants it shares (its
    parameters mapped in turn)."""
    for option in node.options:
        if not isinstance(option, dict):
            if not isinstance(value, dict) and _same(option, value):
                return option
            continue
        if not isinstance(value, dict):
            continue
        constants = {k: v for k, v in option.items() if not isinstance(v, (Distribution, Choice, Grid, dict))}
        if any(k in value and not _same(value[k], v) for k, v in constants.items()):
            continue
        try:
            return map_config(value, option, rng, found, here)
        except Outside:
            continue
    raise Outside(f"{here}: {brief(value)} is not one of its options")


# ----------------------------------------------------------------------------------------------------------
# Reading the earlier experiments


def locate(entry: str, storage: str) -> tuple[str, str]:
    """(storage, name) of an entry: `NAME` in `storage`, or `STORAGE/NAME` (a folder, relative to the current
    one, or a URI; a URI's `?query` stays with its storage). ValueError when it names no experiment."""
    from tunerd.spec import EXPERIMENT_NAME

    if "/" not in entry:
        where, name = storage, entry
    else:
        base, mark, query = entry.partition("?")
        parent, _, name = base.rstrip("/").rpartition("/")
        if not parent or (is_uri(base) and "://" not in parent):
            raise ValueError(f"{brief(entry)}: expected NAME or STORAGE/NAME")
        where = resolve_storage(parent + mark + query)
    if not EXPERIMENT_NAME.fullmatch(name):
        raise ValueError(f"{brief(name)} is not an experiment name")
    return where, name


def _goal_text(goal: Goal) -> str:
    return ", ".join(f"{o.metric} ({o.mode})" for o in goal.objectives)


def _mismatches(name: str, summary: Summary, earlier: dict[str, Any], experiment: Experiment) -> list[str]:
    """Why `name`'s values would mean something else here: its objectives or its data differ."""
    found = []
    theirs, ours = summary.goal(), experiment.spec.goal()
    if [(o.metric, o.mode) for o in theirs.objectives] != [(o.metric, o.mode) for o in ours.objectives]:
        found.append(f"{name} optimised {_goal_text(theirs)}, this experiment optimises {_goal_text(ours)}")
    if "data" not in earlier:
        found.append(f"{name} has no spec.yaml with its data: its trials cannot be compared")
    elif earlier["data"] != experiment.data_for_trainable():
        found.append(f"{name} ran on data {earlier['data']}, this experiment on {experiment.data_for_trainable()}")
    return found


def _read(i: int, entry: str, experiment: Experiment, goal: Goal, rng: np.random.RandomState,
          problems: list[Problem], warnings: list[str]) -> tuple[Source, list[Observation]] | None:
    from tunerd.report import read_spec, read_summary

    key = f"search.warm_start[{i}]"
    try:
        where, name = locate(entry, experiment.storage)
        if (where.rstrip("/"), name) == (experiment.storage.rstrip("/"), experiment.name):
            raise ValueError(f"{name} is this experiment itself; name an earlier one")
        summary, earlier = read_summary(where, name), read_spec(where, name)
    except (ValueError, UsageError) as exc:
        problems.append(Problem(key, str(exc)))
        return None
    mismatches = _mismatches(name, summary, earlier, experiment)
    if mismatches:
        problems.extend(Problem(key, message) for message in mismatches)
        return None
    if earlier.get("trainable") != experiment.spec.trainable:
        warnings.append(f"{key}: {name} trained {earlier.get('trainable')}, this experiment trains "
                        f"{experiment.spec.trainable}")
    found, observations, outside, left_out = MapNotes(searched_before=searched_paths(earlier.get("space"))), [], 0, 0
    for trial in sorted(summary.trials, key=lambda t: t.index):
        if goal.point(trial.best) is None:
            left_out += 1
            continue
        try:
            config = map_config(trial.config, experiment.space, rng, found)
        except Outside:
            outside += 1
            continue
        observations.append(Observation(config, {k: v for k, v in trial.best.items() if is_finite_number(v)}))
    for path, (before, now) in sorted(found.changed.items()):
        warnings.append(f"{key}: {name} ran with {path.removeprefix('space.')} {brief(before)}, this experiment "
                        f"with {brief(now)} (its observations were measured with {brief(before)})")
    source = Source(name=name, where=f"{where.rstrip('/')}/{name}", observations=len(observations), outside=outside,
                    left_out=left_out, dropped=tuple(sorted(p.removeprefix("space.") for p in found.dropped)),
                    filled=tuple(sorted(p.removeprefix("space.") for p in found.filled)))
    return source, observations


def load(experiment: Experiment) -> tuple[WarmStart | None, list[Problem], list[str]]:
    """The observations `search.warm_start` names, the problems with its entries (each at its key path),
    and warnings (constants that changed, another trainable)."""
    entries = experiment.spec.search.warm_start
    problems: list[Problem] = []
    warnings: list[str] = []
    if not entries:
        return None, problems, warnings
    algorithm = experiment.algorithm
    if not algorithm.warm_starts:
        able = ", ".join(a.name for a in _warm_startable())
        picked = f"auto picked {algorithm.name}, which" if experiment.chosen_because else algorithm.name
        return None, [Problem("search.warm_start", f"{picked} cannot take earlier observations (it would run "
                                                   f"them again); use {able}")], warnings
    goal, rng = experiment.spec.goal(), np.random.RandomState(experiment.spec.seed)
    sources, observations = [], []
    for i, entry in enumerate(entries):
        if entry in entries[:i]:
            problems.append(Problem(f"search.warm_start[{i}]", f"{brief(entry)} is already entry "
                                                               f"{entries.index(entry)}"))
            continue
        read = _read(i, entry, experiment, goal, rng, problems, warnings)
        if read is not None:
            sources.append(read[0])
            observations.extend(read[1])
    if problems:
        return None, problems, warnings
    return WarmStart(tuple(observations), tuple(sources)), problems, warnings


def _warm_startable() -> list[Any]:
    from tunerd.searchers import ALGORITHMS

    return [a for a in ALGORITHMS if a.warm_starts]
