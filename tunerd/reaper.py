"""Frees the workers' resources of a multi-worker trial whose own process died (a crash, the OOM killer).

Ray Train places a run's workers in a placement group created by its controller, an actor of the trial's
process that dies with it. Ray removes such a group when its creator *and* its job are dead; the job (the
tunerd driver) lives on, so until then only Ray Train's `PlacementGroupCleaner` frees it, and that asks
the dashboard's state API, which tunerd's embedded Ray does not run (and which fails outright when the
machine has more than one Ray). The CPUs and GPUs would stay reserved and every later trial would wait.
A trial that Tune *stops* releases its run itself (`trainables.distributed.TrainRun.stop`); this callback,
in the driver, covers the rest: every few seconds it removes this job's placement groups whose creating
actor is dead. In a tunerd run only Ray Train's controllers create placement groups from an actor (Tune
creates the trials' own from the driver), and a controller removes its group before it exits normally, so
such a group is an orphan.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import ray
from ray.tune import Callback

from tunerd import ray_internals

log = logging.getLogger("tunerd")

def orphaned_placement_groups() -> list[str]:
    """Hex ids of this job's placement groups, not removed, whose creating actor is dead."""
    return ray_internals.placement_groups_of_dead_actors(ray.get_runtime_context().get_job_id())


def remove_orphaned_placement_groups() -> list[str]:
    """Remove them; returns their ids."""
    from ray.util.placement_group import remove_placement_group

    removed = []
    for group_id in orphaned_placement_groups():
        try:
            remove_placement_group(ray_internals.placement_group(group_id))
            removed.append(group_id)
        except Exception as exc:  # removed meanwhile
            log.debug("placement group %s: %s", group_id, exc)
    if removed:
        log.warning("freed the Ray Train workers of %d trial(s) whose process died", len(removed))
    return removed


class OrphanReaper(Callback):
    """A Tune callback that removes orphaned placement groups every `interval_s` and when a trial fails."""

    def __init__(self, interval_s: float = 5.0) -> None:
        self.interval_s = interval_s
        self._last = 0.0

    def _reap(self) -> None:
        self._last = time.monotonic()
        try:
            remove_orphaned_placement_groups()
        except Exception as exc:  # a Ray without these internals: Ray's own cleaner is all there is
            log.debug("could not look for orphaned placement groups: %s", exc)

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if time.monotonic() - self._last >= self.interval_s:
            self._reap()

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._reap()

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._reap()
