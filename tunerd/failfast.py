"""`failures.fail_fast`: stop an experiment whose first trials all fail alike before their first report.

A mistake every trial makes (a missing column, a typo in a user's trainable) otherwise costs every trial
its `max_retries` attempts: 40 trials x 3 attempts for one bad column. When each of the first `first`
trials (in the order Ray created them) has failed at least once before reporting anything, with the same
kind of exception, the experiment stops at once: Ray Tune's `Stopper.stop_all`, fed by a `Callback` that
sees every failure (a retried one too, `on_trial_recover`). One trial that reports disarms it.
"Alike" is the exception's type (the text before the first ':' of its last traceback line): the message
may name the configuration (`bad value x=0.3`), the type does not.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.stopper import Stopper

from tunerd.display import config_text
from tunerd.results import error_summary


class FailFast(Callback, Stopper):
    def __init__(self, first: int) -> None:
        self.first = first
        #: trial ids in the order Ray created them
        self.order: list[str] = []
        self.configs: dict[str, dict[str, Any]] = {}
        #: the first error of each trial that failed before its first report
        self.failures: dict[str, str] = {}
        self.reported: set[str] = set()
        #: why the experiment was stopped (None: it was not)
        self.reason: str | None = None

    # --- Callback: what happened -------------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id not in self.configs:
            self.order.append(trial.trial_id)
            self.configs[trial.trial_id] = trial.config

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.reported.add(trial.trial_id)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._failed(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._failed(trial)

    def _failed(self, trial: Any) -> None:
        if trial.trial_id in self.reported or trial.trial_id in self.failures:
            return
        self.on_trial_start(0, [], trial)  # a trial may fail before Ray says it started
        text = None
        if trial.error_file and Path(trial.error_file).exists():
            text = Path(trial.error_file).read_text(errors="replace")
        self.failures[trial.trial_id] = error_summary(text) or "the trial failed (no error message was recorded)"
        self.reason = self.reason or self.verdict()

    def verdict(self) -> str | None:
        """The message that stops the experiment, or None while the first trials do not all fail alike."""
        if self.first <= 0 or len(self.order) < self.first:
            return None
        first = self.order[:self.first]
        if any(trial_id in self.reported or trial_id not in self.failures for trial_id in first):
            return None
        kinds = {self.failures[trial_id].split(":", 1)[0] for trial_id in first}
        if len(kinds) != 1:
            return None
        tried = "; ".join(config_text(self.configs[trial_id]) for trial_id in first)
        return (f"the first {self.first} trials all failed before their first report, with {kinds.pop()} "
                f"(failures.fail_fast: {self.first}; 0 turns this off); the first error: "
                f"{self.failures[first[0]]}; tried: {tried}")

    # --- Stopper: stop everything once it has decided ----------------------------------------------
    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.reason is not None
