"""What an experiment optimises: one objective or several (a Pareto search), the constraints a trial must
meet, and the one order in which trials and a trial's own reports rank. No Ray, no torch.

Definitions (Deb et al. 2002, NSGA-II; constraint domination as there):
- a report's *point* is its objectives' values, each turned so that lower is better (a `max` objective
  negated); a report missing one, or with a non-finite one, has no point (the trial is unscored);
- *violation*: how far a report is outside its constraints, the sum over constraints of the distance
  to the bound relative to the bound (a missing value counts as infinitely far); *feasible*: violation 0;
- point a *dominates* b: no worse in every objective and better in one; the Pareto *front* of a set: its
  points no other dominates; *Pareto rank* 0 is the front, rank 1 the front once rank 0 is set aside, ...

Trials rank: feasible before infeasible; feasible ones by Pareto rank, then by the `select` objective
(then the other objectives in order), then by start order; infeasible ones by violation. With one
objective and no constraints that is simply the best value first. A trial's own result is its best
report in the same order (so a trial's values are those of one epoch, the checkpoint that is kept).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MODES = ("max", "min")


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str  # "max" | "min"

    def lower_is_better(self, value: float) -> float:
        """`value` turned so that lower is better."""
        return -value if self.mode == "max" else value

    def as_dict(self) -> dict[str, str]:
        return {"metric": self.metric, "mode": self.mode}


@dataclass(frozen=True)
class Constraint:
    """`metric` must stay within [min, max] (either may be None)."""

    metric: str
    min: float | None = None
    max: float | None = None

    def violation(self, value: Any) -> float:
        """0 inside the bounds; outside, the distance to the bound relative to the bound's size (so that
        constraints on parameters and on milliseconds weigh alike); inf when the value is missing."""
        if not is_finite_number(value):
            return math.inf
        if self.max is not None and value > self.max:
            return (value - self.max) / max(abs(self.max), 1e-12)
        if self.min is not None and value < self.min:
            return (self.min - value) / max(abs(self.min), 1e-12)
        return 0.0

    def describe(self) -> str:
        parts = ([f">= {self.min:g}"] if self.min is not None else []) + (
            [f"<= {self.max:g}"] if self.max is not None else [])
        return f"{self.metric} {' and '.join(parts)}"

    def as_dict(self) -> dict[str, float]:
        return {key: value for key, value in (("min", self.min), ("max", self.max)) if value is not None}


@dataclass(frozen=True)
class Goal:
    """The objectives (the first is the default `select`), the constraints, and which objective picks the
    trial that becomes `best/`."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()
    select: str = ""

    def __post_init__(self) -> None:
        if not self.objectives:
            raise ValueError("a goal needs at least one objective")
        if not self.select:
            object.__setattr__(self, "select", self.objectives[0].metric)
        if self.select not in self.metrics:
            raise ValueError(f"select: {self.select!r} is not one of the objectives {', '.join(self.metrics)}")

    @classmethod
    def single(cls, metric: str, mode: str) -> Goal:
        return cls((Objective(metric, mode),))

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(objective.metric for objective in self.objectives)

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(objective.mode for objective in self.objectives)

    @property
    def is_multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def is_plain(self) -> bool:
        """One objective, no constraints: what every single-metric tool does."""
        return not self.is_multi and not self.constraints

    @property
    def selected(self) -> Objective:
        return next(objective for objective in self.objectives if objective.metric == self.select)

    def point(self, report: Mapping[str, Any]) -> tuple[float, ...] | None:
        """The report's objectives, lower is better; None when one is missing or not finite."""
        values = [report.get(objective.metric) for objective in self.objectives]
        if not all(is_finite_number(value) for value in values):
            return None
        return tuple(objective.lower_is_better(float(value)) for objective, value in zip(self.objectives, values))

    def violation(self, report: Mapping[str, Any]) -> float:
        return sum(constraint.violation(report.get(constraint.metric)) for constraint in self.constraints)

    def feasible(self, report: Mapping[str, Any]) -> bool:
        return self.violation(report) == 0.0

    def report_key(self, report: Mapping[str, Any]) -> tuple[float, ...] | None:
        """Orders a trial's reports (lower first): feasible first, then the select objective, then the others
        in order; None when the report has no point."""
        point = self.point(report)
        if point is None:
            return None
        first = self.metrics.index(self.select)
        return (self.violation(report), point[first], *point[:first], *point[first + 1:])

    def better_report(self, report: Mapping[str, Any], than: Mapping[str, Any] | None) -> bool:
        """Whether `report` beats `than` as a trial's result (`than` None or without a point: any scored report
        does; ties keep the earlier one)."""
        key = self.report_key(report)
        if key is None:
            return False
        other = self.report_key(than) if than else None
        return other is None or key < other

    def as_dicts(self) -> tuple[list[dict[str, str]], dict[str, dict[str, float]]]:
        """`objectives` and `constraints` as `summary.json` and the experiment file write them."""
        return ([objective.as_dict() for objective in self.objectives],
                {constraint.metric: constraint.as_dict() for constraint in self.constraints})

    @classmethod
    def from_dicts(cls, objectives: Sequence[Mapping[str, Any]], constraints: Mapping[str, Mapping[str, Any]] | None,
                   select: str = "") -> Goal:
        return cls(tuple(Objective(o["metric"], o["mode"]) for o in objectives),
                   tuple(Constraint(metric, bounds.get("min"), bounds.get("max"))
                         for metric, bounds in (constraints or {}).items()),
                   select)


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Point `a` dominates `b`: no worse in every objective and better in one (lower is better)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def pareto_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """Each point's Pareto rank (0: the front), lower is better in every coordinate. Vectorised: one
    dominance matrix, then fronts peeled off (1,000 points of 3 objectives: a few ms)."""
    import numpy as np  # here: `status` and `show` read summaries without importing numpy

    if not len(points):
        return []
    values = np.asarray(points, dtype=float)
    no_worse = (values[:, None, :] <= values[None, :, :]).all(axis=2)
    better = (values[:, None, :] < values[None, :, :]).any(axis=2)
    dominates = no_worse & better  # dominates[i, j]: i dominates j
    dominated_by = dominates.sum(axis=0)
    ranks = np.full(len(values), -1)
    rank = 0
    current = np.flatnonzero(dominated_by == 0)
    while current.size:
        ranks[current] = rank
        dominated_by = dominated_by - dominates[current].sum(axis=0)
        dominated_by[ranks >= 0] = -1
        current = np.flatnonzero(dominated_by == 0)
        rank += 1
    return ranks.tolist()


def crowding_distances(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point within its set: larger is more isolated (the extremes of
    each objective: infinite). Breaks ties inside a front so that a front's spread survives."""
    import numpy as np

    n = len(points)
    if n <= 2:
        return [math.inf] * n
    values = np.asarray(points, dtype=float)
    distance = np.zeros(n)
    for column in values.T:
        order = np.argsort(column, kind="stable")
        span = column[order[-1]] - column[order[0]]
        distance[order[0]] = distance[order[-1]] = math.inf
        if span > 0:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return distance.tolist()


def survivors(points: Sequence[Sequence[float]], violations: Sequence[float], keep: int) -> list[int]:
    """Indices of the `keep` best points by constraint domination: feasible before infeasible (by
    violation), feasible by Pareto rank, a rank's ties by crowding distance (largest first), then by index.
    What MO-ASHA promotes at a rung (Schmucker et al. 2021, with NSGA-II's selection)."""
    feasible = [i for i, v in enumerate(violations) if v == 0]
    infeasible = sorted((i for i, v in enumerate(violations) if v > 0), key=lambda i: (violations[i], i))
    ranks = pareto_ranks([points[i] for i in feasible])
    order: list[int] = []
    for rank in sorted(set(ranks)):
        members = [i for i, r in zip(feasible, ranks) if r == rank]
        crowding = crowding_distances([points[i] for i in members])
        order += [i for _, i in sorted(zip(crowding, members), key=lambda ci: (-ci[0], ci[1]))]
    return (order + infeasible)[:keep]
