"""The live progress view of `tunerd launch`, in place of Ray's log tables.

On a terminal: a compact table redrawn in place — a status line (running / done / stopped early / errors /
pending, best so far, elapsed and estimated remaining) and one line per running trial (epoch and metric) —
plus one line per trial that ends. Elsewhere (a log file, CI) the same table is printed every `interval_s`.
`json_lines`: one JSON object per event on stdout, for scripts, and nothing else.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any

import click
from ray.tune import Callback

from tunerd.display import score
from tunerd.results import ExperimentRecord
from tunerd.summary import TrialRecord, TrialStatus, is_finite_number


def describe_end(record: TrialRecord, metric: str) -> str:
    value = record.value(metric)
    score_text = f"{metric}={score(value)}" if value is not None else f"{metric}=n/a"
    if record.status == TrialStatus.FINISHED:
        return f"finished       {score_text}  ({record.epochs} epochs)"
    if record.status == TrialStatus.STOPPED:
        return f"stopped early  {score_text}  (at epoch {record.epochs})"
    if record.status == TrialStatus.DIVERGED:
        return f"diverged       non-finite loss at epoch {record.epochs}"
    return f"errored        {record.error}"


def clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class ProgressView(Callback):
    def __init__(self, record: ExperimentRecord, *, quiet: bool = False, json_lines: bool = False,
                 interval_s: float | None = None, max_epochs: int | None = None) -> None:
        self.record = record
        self.quiet = quiet
        self.json_lines = json_lines
        self.live = sys.stdout.isatty() and not json_lines
        self.interval_s = interval_s if interval_s is not None else (0.5 if self.live else 30.0)
        self.max_epochs = max_epochs
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn_lines = 0

    # --- what is shown --------------------------------------------------------------------------------------
    def remaining_s(self) -> float | None:
        """Elapsed time scaled by the share of the work done (ended trials count whole, running ones by their
        epochs): a rough estimate, pessimistic under ASHA, which ends most trials early."""
        total = self.record.trial_count
        if not total:
            return None
        done = 0.0
        for trial in self.record.trials.values():
            if trial.status.ended:
                done += 1
            elif trial.status == TrialStatus.RUNNING and trial.epochs:
                planned = trial.planned_epochs or self.max_epochs
                done += min(1.0, trial.epochs / planned) if planned else 0.0
        if done <= 0:
            return None
        elapsed = time.monotonic() - self._start
        return max(0.0, elapsed * (total - done) / done)

    def status_line(self) -> str:
        counts = self.record.counts()
        parts = [f"[{clock(time.monotonic() - self._start)}]",
                 f"running {counts['running']}",
                 f"done {counts['finished']}",
                 f"stopped early {counts['stopped']}",
                 f"diverged {counts['diverged']}" if counts["diverged"] else "",
                 f"errors {counts['errored']}",
                 f"pending {max(0, self.record.trial_count - sum(counts.values())) + counts['pending']}"]
        best = self.record.best()
        if best is not None:
            parts.append(f"best {self.record.metric} {score(best.value(self.record.metric))} "
                         f"(trial {best.trial_id})")
        remaining = self.remaining_s()
        if remaining is not None and counts["running"] + counts["pending"]:
            parts.append(f"~{clock(remaining)} left")
        return "  ".join(p for p in parts if p)

    def running_lines(self) -> list[str]:
        lines = []
        running = [t for t in self.record.trials.values() if t.status == TrialStatus.RUNNING]  # sort these only
        for trial in sorted(running, key=lambda t: t.index):
            value = trial.last.get(self.record.metric)
            planned = trial.planned_epochs or self.max_epochs
            epoch = f"epoch {trial.epochs}/{planned}" if planned else f"epoch {trial.epochs}"
            shown = f"{self.record.metric}={score(value)}" if is_finite_number(value) else "starting"
            lines.append(f"    {trial.trial_id}  running  {epoch:<12} {shown}")
        return lines

    # --- drawing ---------------------------------------------------------------------------------------------
    def _event(self, event: str, **fields: Any) -> None:
        click.echo(json.dumps({"event": event, "time": round(time.time(), 3), **fields}, default=str))

    def _table(self) -> None:
        if self.quiet or self.json_lines:
            return
        lines = [self.status_line(), *self.running_lines()]
        if self.live:
            self._erase()
            click.echo("\n".join(lines))
            self._drawn_lines = len(lines)
        else:
            click.echo("\n".join(lines))

    def _erase(self) -> None:
        """Move up over the table drawn last and clear it, so it is redrawn in place."""
        if self._drawn_lines:
            click.echo(f"\033[{self._drawn_lines}F\033[J", nl=False)
            self._drawn_lines = 0

    def _line(self, text: str) -> None:
        if self.quiet or self.json_lines:
            return
        if self.live:
            self._erase()
        click.echo(text)

    # --- Ray Tune callbacks ----------------------------------------------------------------------------------
    def on_step_end(self, iteration, trials, **info):
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            if self.json_lines:
                self._event("status", counts=self.record.counts(), trial_count=self.record.trial_count,
                            remaining_s=self.remaining_s())
            else:
                self._table()

    def on_trial_start(self, iteration, trials, trial, **info):
        if self.json_lines:
            self._event("trial_start", trial_id=trial.trial_id, config=trial.config)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.json_lines:
            record = self.record.trials.get(trial.trial_id)
            self._event("result", trial_id=trial.trial_id, metrics=record.last if record else {})

    def _trial_ended(self, trial) -> None:
        record = self.record.trials.get(trial.trial_id)
        if record is None:
            return
        if self.json_lines:
            self._event("trial_end", trial_id=trial.trial_id, status=record.status, epochs=record.epochs,
                        best=record.best, error=record.error)
        else:
            self._line(f"  trial {trial.trial_id}  {describe_end(record, self.record.metric)}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._trial_ended(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._trial_ended(trial)

    def on_trial_recover(self, iteration, trials, trial, **info):
        if self.json_lines:
            self._event("trial_retry", trial_id=trial.trial_id)
        else:
            self._line(f"  trial {trial.trial_id}  failed, retrying from its last checkpoint")

    def on_experiment_end(self, trials, **info):
        if not self.json_lines:
            self._table()
            self._drawn_lines = 0  # the last table stays on screen
