"""`scheduler: asha`: asynchronous successive halving (Ray Tune's ASHAScheduler): at each rung only the top
1/reduction_factor of the trials that reached it go on. With several objectives or constraints: MO-ASHA,
promotion by non-dominated sorting (`_pareto.ParetoASHA`)."""
from __future__ import annotations

from typing import Any

from tunerd.schedulers.base import TIME_ATTR, Scheduler


class ASHA(Scheduler):
    name = "asha"
    summary = "asynchronous successive halving"
    reads = ("grace_period", "reduction_factor")

    def build(self, spec: Any) -> Any:
        goal = spec.goal()
        if not goal.is_plain:
            from tunerd.schedulers._pareto import ParetoASHA

            return ParetoASHA(goal, time_attr=TIME_ATTR, max_t=spec.stop.max_epochs,
                              grace_period=spec.scheduler.grace_period,
                              reduction_factor=spec.scheduler.reduction_factor)
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(time_attr=TIME_ATTR, max_t=spec.stop.max_epochs,
                             grace_period=spec.scheduler.grace_period,
                             reduction_factor=spec.scheduler.reduction_factor)


BACKEND = ASHA()
