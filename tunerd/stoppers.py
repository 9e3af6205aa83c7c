"""Stoppers: what ends a trial (its epoch cap, a non-finite result) or the whole experiment (a target
reached). A trial's time is its number of reports (`training_iteration`), one per epoch for the built-ins."""
from __future__ import annotations

from ray.tune.stopper import CombinedStopper, Stopper

from tunerd.results import has_diverged
from tunerd.schedulers import TIME_ATTR
from tunerd.spec import ExperimentSpec


class MaxEpochsStopper(Stopper):
    """Ends a trial at its `max_epochs`-th epoch (`training_iteration`, one report per epoch).

    Ray's `MaximumIterationStopper` counts the results it has seen instead: a trial retried from a
    checkpoint older than its last report (a class trainable is checkpointed after its result) reports
    that epoch again, and would be cut one epoch short.
    """

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs

    def __call__(self, trial_id: str, result: dict) -> bool:
        return result.get(TIME_ATTR, 0) >= self.max_epochs

    def stop_all(self) -> bool:
        return False


class DivergedStopper(Stopper):
    """Ends a trial whose report is non-finite (`results.has_diverged`): its later epochs cannot recover and
    would only hold a slot. Built-ins end such a trial themselves; a user's function may not."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def __call__(self, trial_id: str, result: dict) -> bool:
        return has_diverged(result, self.metric)

    def stop_all(self) -> bool:
        return False


class TargetStopper(Stopper):
    """Ends the whole experiment once any trial reaches `target` (SPEC §1 `stop.target`).

    Ray has no stopper that compares a metric with a threshold in the right direction for `mode`.
    """

    def __init__(self, metric: str, mode: str, target: float) -> None:
        self.metric, self.mode, self.target = metric, mode, target
        self.reached = False

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (value >= self.target) if self.mode == "max" else (value <= self.target):
                self.reached = True
        return self.reached

    def stop_all(self) -> bool:
        return self.reached


def build_stopper(spec: ExperimentSpec) -> Stopper:
    stoppers: list[Stopper] = [MaxEpochsStopper(spec.stop.max_epochs), DivergedStopper(spec.metric)]
    if spec.stop.target is not None:
        stoppers.append(TargetStopper(spec.metric, spec.mode, spec.stop.target))
    return CombinedStopper(*stoppers)
