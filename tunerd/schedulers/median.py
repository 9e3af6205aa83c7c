"""`scheduler: median`: the median stopping rule (Ray Tune's MedianStoppingRule, without its time-sharing):
a trial whose best result is below the median of the other trials' running averages at the same epoch is
stopped. With several objectives or constraints: the other trials' median result must dominate the
trial's best (`_pareto.ParetoMedian`)."""
from __future__ import annotations

from typing import Any

from tunerd.schedulers.base import TIME_ATTR, Scheduler

#: trials that must have reached an epoch before the rule compares a trial with them
MIN_SAMPLES = 3


class Median(Scheduler):
    name = "median"
    summary = "median stopping rule"
    reads = ("grace_period",)

    def build(self, spec: Any) -> Any:
        goal = spec.goal()
        if not goal.is_plain:
            from tunerd.schedulers._pareto import ParetoMedian

            return ParetoMedian(goal, time_attr=TIME_ATTR, grace_period=spec.scheduler.grace_period,
                                min_samples=MIN_SAMPLES)
        from tunerd.ray_internals import median_rule_without_pauses

        return median_rule_without_pauses()(time_attr=TIME_ATTR, grace_period=spec.scheduler.grace_period,
                                            min_samples_required=MIN_SAMPLES)


BACKEND = Median()
