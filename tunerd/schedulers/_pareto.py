"""Early stopping with several objectives or with constraints, on Ray Tune's scheduler API (importing this
imports Ray). Ray's ASHA and median rule compare one metric; these compare trials by `tunerd.objectives`
(constraint domination, non-dominated sorting), and with one objective and no constraints they decide
as Ray's do.

- `ParetoASHA` (MO-ASHA, Schmucker, Donini, Zafar, Salinas & Archambeau 2021): asynchronous successive
  halving whose rungs promote by non-dominated sorting. A trial that reaches a rung (grace_period x
  reduction_factor^k epochs) is recorded there and goes on only if it is among the best
  ceil(n / reduction_factor) of the n trials recorded at that rung (as many as Ray's ASHA keeps):
  feasible before infeasible, then by Pareto rank, a front's ties by crowding distance (NSGA-II's
  selection, which keeps the front's spread).
- `ParetoMedian`: after the grace period, a trial is stopped when the median of the other trials' best
  feasible results at the same epoch (each objective's median) dominates its own best feasible result so
  far (or it has none), once at least `min_samples` other trials have one at that epoch.
A report that lacks an objective (or has a non-finite one) counts as worse than any other.
"""
from __future__ import annotations

import math
import statistics
from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tunerd.objectives import Goal, dominates, survivors

#: a report without a point: infinitely infeasible, so it ranks last
NO_POINT = math.inf


def rung_levels(grace_period: int, reduction_factor: float, max_t: int) -> list[int]:
    """The epochs at which trials are compared: grace_period x reduction_factor^k below max_t (as Ray's ASHA)."""
    levels, k = [], 0
    while (level := int(grace_period * reduction_factor ** k)) < max_t:
        levels.append(level)
        k += 1
    return levels


class ParetoASHA(FIFOScheduler):
    _supports_buffered_results = False  # every report may be a rung

    def __init__(self, goal: Goal, *, time_attr: str, max_t: int, grace_period: int,
                 reduction_factor: float) -> None:
        super().__init__()
        self.goal = goal
        self.time_attr = time_attr
        self.max_t = max_t
        self.reduction_factor = reduction_factor
        #: per rung (highest first): trial id -> (point, violation) recorded when it reached the rung
        self.rungs: dict[int, dict[str, tuple[tuple[float, ...], float]]] = {
            level: {} for level in reversed(rung_levels(grace_period, reduction_factor, max_t))}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        return self.decide(trial.trial_id, result)

    def decide(self, trial_id: str, result: dict[str, Any]) -> str:
        """CONTINUE or STOP for `trial_id` after `result` (no Ray objects: tested directly)."""
        time = result.get(self.time_attr, 0)
        if time >= self.max_t:
            return TrialScheduler.STOP
        for level, recorded in self.rungs.items():
            if time < level:
                continue
            if trial_id in recorded:
                return TrialScheduler.CONTINUE
            point = self.goal.point(result)
            recorded[trial_id] = ((0.0,) * len(self.goal.objectives), NO_POINT) if point is None else (
                point, self.goal.violation(result))
            ids = list(recorded)
            keep = math.ceil(len(ids) / self.reduction_factor)
            best = survivors([recorded[i][0] for i in ids], [recorded[i][1] for i in ids], keep)
            return TrialScheduler.CONTINUE if ids.index(trial_id) in best else TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        sizes = ", ".join(f"{level}: {len(recorded)}" for level, recorded in self.rungs.items())
        return f"ParetoASHA: trials recorded per rung {{{sizes}}}"


class ParetoMedian(FIFOScheduler):
    _supports_buffered_results = False

    def __init__(self, goal: Goal, *, time_attr: str, grace_period: int, min_samples: int) -> None:
        super().__init__()
        self.goal = goal
        self.time_attr = time_attr
        self.grace_period = grace_period
        self.min_samples = min_samples
        #: per trial: its best point so far at each epoch it reported (index = epoch - 1)
        self.best_so_far: dict[str, list[tuple[float, ...] | None]] = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        return self.decide(trial.trial_id, result)

    def decide(self, trial_id: str, result: dict[str, Any]) -> str:
        time = int(result.get(self.time_attr, 0))
        history = self.best_so_far.setdefault(trial_id, [])
        point = self.goal.point(result) if self.goal.feasible(result) else None
        previous = history[-1] if history else None
        history.append(_better(point, previous))
        if time < self.grace_period:
            return TrialScheduler.CONTINUE
        others = [h[time - 1] for other, h in self.best_so_far.items()
                  if other != trial_id and len(h) >= time and h[time - 1] is not None]
        if len(others) < self.min_samples:
            return TrialScheduler.CONTINUE
        if history[-1] is None:  # no feasible result yet, where enough others have one
            return TrialScheduler.STOP
        median = tuple(statistics.median(column) for column in zip(*others))
        return TrialScheduler.STOP if dominates(median, history[-1]) else TrialScheduler.CONTINUE

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        pass  # its results still count for the others, as in Ray's median rule

    def debug_string(self) -> str:
        return f"ParetoMedian: {len(self.best_so_far)} trials seen"


def _better(point: tuple[float, ...] | None, previous: tuple[float, ...] | None) -> tuple[float, ...] | None:
    """A trial's best so far: the new point if it is not dominated by the previous best, else the previous."""
    if point is None:
        return previous
    if previous is None:
        return point
    return previous if dominates(previous, point) else point
