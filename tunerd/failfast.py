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
        #: the first error of each trial that failed before its first report
        self.failures: dict[str, str] = {}
        self.reported: set[str] = set()
        #: why the experiment was stopped (None: it was not)
        self.reason: str | None = None

    # --- Callback: what happened -------------------------------------------------------------------
    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self.reported.add(trial.trial_id)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._failed(trial, trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._failed(trial, trials)

    def _failed(self, trial: Any, trials: list) -> None:
        if trial.trial_id in self.reported or trial.trial_id in self.failures:
            return
        text = None
        if trial.error_file and Path(trial.error_file).exists():
            text = Path(trial.error_file).read_text(errors="replace")
        self.failures[trial.trial_id] = error_summary(text) or "the trial failed (no error message was recorded)"
        self.reason = self.reason or self.verdict(trials)

    def verdict(self, trials: list) -> str | None:
        """The message that stops the experiment, or None while the first trials (`trials` is Ray's list, in
        the order it created them) do not all fail alike."""
        if self.first <= 0 or len(trials) < self.first:
            return None
        first = trials[:self.first]
        if any(t.trial_id in self.reported or t.trial_id not in self.failures for t in first):
            return None
        kinds = {self.failures[t.trial_id].split(":", 1)[0] for t in first}
        if len(kinds) != 1:
            return None
        tried = "; ".join(config_text(t.config) for t in first)
        return (f"the first {self.first} trials all failed before their first report, with {kinds.pop()} "
                f"(failures.fail_fast: {self.first}; 0 turns this off); the first error: "
                f"{self.failures[first[0].trial_id]}; tried: {tried}")

    # --- Stopper: stop everything once it has decided ----------------------------------------------
    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.reason is not None
