"""The live progress view of `tunerd launch`, in place of Ray's log tables.

One line per trial that ends (how and with what score), and a status line (running / done / stopped early /
errors / best so far): redrawn in place on a terminal, printed every `interval_s` otherwise.
"""
from __future__ import annotations

import sys
import time

import click
from ray.tune import Callback

from tunerd.results import ExperimentRecord, TrialRecord


def short_id(trial_id: str) -> str:
    """Ray's trial ids are `<experiment hash>_<index>`: the index is what a user can tell apart."""
    return trial_id.rsplit("_", 1)[-1]


def describe_end(record: TrialRecord, metric: str) -> str:
    value = record.best.get(metric)
    score = f"{metric}={value:.4f}" if isinstance(value, (int, float)) else f"{metric}=n/a"
    if record.status == "finished":
        return f"finished       {score}  ({record.epochs} epochs)"
    if record.status == "stopped":
        return f"stopped early  {score}  (at epoch {record.epochs})"
    if record.status == "diverged":
        return f"diverged       non-finite loss at epoch {record.epochs}"
    return f"errored        {record.error}"


class ProgressView(Callback):
    def __init__(self, record: ExperimentRecord, *, quiet: bool = False, interval_s: float | None = None) -> None:
        self.record = record
        self.quiet = quiet
        self.live = sys.stdout.isatty()
        self.interval_s = interval_s if interval_s is not None else (0.5 if self.live else 30.0)
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = False

    def status_line(self) -> str:
        counts = self.record.counts()
        elapsed = int(time.monotonic() - self._start)
        parts = [f"[{elapsed // 60:02d}:{elapsed % 60:02d}]",
                 f"running {counts['running']}",
                 f"done {counts['finished']}",
                 f"stopped early {counts['stopped']}",
                 f"diverged {counts['diverged']}" if counts["diverged"] else "",
                 f"errors {counts['errored']}",
                 f"pending {counts['pending']}"]
        best = self.record.best()
        if best is not None:
            parts.append(f"best {self.record.metric} {best.best[self.record.metric]:.4f} "
                         f"(trial {short_id(best.trial_id)})")
        return "  ".join(p for p in parts if p)

    def _emit(self, text: str, *, transient: bool = False) -> None:
        if self.quiet:
            return
        if self.live:
            click.echo("\r\033[2K" + text, nl=not transient)
            self._drawn = transient
        else:
            click.echo(text)

    def on_step_end(self, iteration, trials, **info):
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self._emit(self.status_line(), transient=True)

    def _trial_ended(self, trial) -> None:
        record = self.record.trials.get(trial.trial_id)
        if record is not None:
            self._emit(f"  trial {short_id(trial.trial_id)}  {describe_end(record, self.record.metric)}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._trial_ended(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._trial_ended(trial)

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._emit(f"  trial {short_id(trial.trial_id)}  failed, retrying from its last checkpoint")

    def on_experiment_end(self, trials, **info):
        self._emit(self.status_line())
