"""`scheduler: fifo`: no early stopping; every trial runs its full course (Ray Tune's FIFOScheduler)."""
from __future__ import annotations

from typing import Any

from tunerd.schedulers.base import Scheduler


class FIFO(Scheduler):
    name = "fifo"
    summary = "no early stopping"

    def build(self, spec: Any) -> Any:
        from ray.tune.schedulers import FIFOScheduler

        return FIFOScheduler()


BACKEND = FIFO()
