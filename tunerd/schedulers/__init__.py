"""Schedulers (early stopping of trials): one module per backend (`asha`, `median`, `fifo`), each declaring
itself (see `base.Scheduler`), found by listing this package. Adding one is one new module and its tests."""
from __future__ import annotations

from tunerd.registry import Registry
from tunerd.schedulers.base import TIME_ATTR, Scheduler

#: every scheduler, by `scheduler.name`
SCHEDULERS: Registry[Scheduler] = Registry("tunerd.schedulers", "scheduler")

__all__ = ["SCHEDULERS", "TIME_ATTR", "Scheduler"]
