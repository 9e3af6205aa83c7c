"""`failures.hang_timeout_s`: a running trial silent too long is killed and retried from its last checkpoint.

A trial that hangs (a deadlock in a data loader, a stuck collective, a network read without a timeout)
holds its slot for ever, and Ray Tune has no timeout per report. `HangWatch` is a Ray Tune `Callback` that
notes when each trial last started or reported and, at every step of the experiment loop, kills the
actor of a trial silent longer than the limit: Ray Tune sees the actor die and retries the trial from its
last checkpoint (counting towards `failures.max_retries`), as for any crashed trial. The limit is the
number given, or with `auto` HANG_FACTOR x the slowest epoch seen so far in the experiment, at least
HANG_MIN_S (a first epoch that takes minutes is not a hang).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

from tunerd import ray_internals

log = logging.getLogger("tunerd")

#: `auto`: this many times the slowest epoch seen, and never less than HANG_MIN_S
HANG_FACTOR = 10
HANG_MIN_S = 120.0


def hang_limit(setting: float | str | None, slowest_epoch_s: float) -> float | None:
    """The silence after which a trial counts as hung: None (off), the number given, or `auto`."""
    if setting is None:
        return None
    if setting == "auto":
        return max(HANG_MIN_S, HANG_FACTOR * slowest_epoch_s)
    return float(setting)


class HangWatch(Callback):
    def __init__(self, setting: float | str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.setting = setting
        self.clock = clock
        #: trial id -> when it last started or reported
        self.last_heard: dict[str, float] = {}
        self.slowest_epoch_s = 0.0
        #: trial id -> how often it was killed for hanging
        self.killed: dict[str, int] = {}

    def _heard(self, trial: Any) -> None:
        self.last_heard[trial.trial_id] = self.clock()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._heard(trial)

    def on_trial_restore(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._heard(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._heard(trial)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._heard(trial)
        seconds = result.get("time_this_iter_s")
        if isinstance(seconds, (int, float)):
            self.slowest_epoch_s = max(self.slowest_epoch_s, float(seconds))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.last_heard.pop(trial.trial_id, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.last_heard.pop(trial.trial_id, None)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        limit = hang_limit(self.setting, self.slowest_epoch_s)
        if limit is None:
            return
        now = self.clock()
        for trial in trials:
            heard = self.last_heard.get(trial.trial_id)
            if trial.status != "RUNNING" or heard is None or now - heard <= limit:
                continue
            if ray_internals.kill_trial_actor(trial):
                self.killed[trial.trial_id] = self.killed.get(trial.trial_id, 0) + 1
                self.last_heard[trial.trial_id] = now  # once per silence: the retry starts the clock again
                log.warning("trial %s: silent for %.0f s (failures.hang_timeout_s: %.0f s): killed, to be retried "
                            "from its last checkpoint", trial.trial_id, now - heard, limit)
