"""Schedulers (early stopping of trials) and stoppers (ending trials or the whole experiment).

A trial's time is its number of reports (`training_iteration`): one report per epoch for the built-ins,
so ASHA's rungs and `stop.max_epochs` are counted in epochs.
"""
from __future__ import annotations

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule, TrialScheduler
from ray.tune.stopper import CombinedStopper, Stopper

from tunerd.results import has_diverged
from tunerd.spec import ExperimentSpec

TIME_ATTR = "training_iteration"


def build_scheduler(spec: ExperimentSpec) -> TrialScheduler:
    settings = spec.scheduler
    if settings.name == "asha":
        return ASHAScheduler(time_attr=TIME_ATTR, max_t=spec.stop.max_epochs, grace_period=settings.grace_period,
                             reduction_factor=settings.reduction_factor)
    if settings.name == "median":
        return MedianStopping(time_attr=TIME_ATTR, grace_period=settings.grace_period, min_samples_required=3)
    return FIFOScheduler()


class MedianStopping(MedianStoppingRule):
    """Ray's median stopping rule without its time-sharing.

    Ray's rule *pauses* a trial whenever fewer than `min_samples_required` other trials have reached its
    epoch and some are pending (its `min_time_slice` cannot prevent the first pause), which restarts
    trials that do not checkpoint and churns actors. Here such a trial runs on until there are enough
    trials to compare it with.
    """

    def _on_insufficient_samples(self, tune_controller, trial, time) -> str:
        return TrialScheduler.CONTINUE


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
