"""The schema of `summary.json` (SPEC §3) as typed objects, and the one order in which trials rank.

The running experiment writes it (`tunerd.results.ExperimentRecord`); `status`, `show`, `resume`, the end of
a run, `leaderboard.csv` and the plots read it back through `Summary.from_json`, so every reader sees the
same fields and the same ranking. No Ray, no torch: reading an experiment is instant.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any


class _Named(str, Enum):
    """An enum whose members are their own JSON text (`"finished"`), in messages too."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class TrialStatus(_Named):
    """Where a trial is (SPEC §3)."""

    PENDING = "pending"
    RUNNING = "running"
    #: ran its full course
    FINISHED = "finished"
    #: early-stopped by the scheduler or its own early stopping
    STOPPED = "stopped"
    #: a non-finite loss or metric
    DIVERGED = "diverged"
    #: failed after its retries
    ERRORED = "errored"

    @property
    def ended(self) -> bool:
        return self in (TrialStatus.FINISHED, TrialStatus.STOPPED, TrialStatus.DIVERGED, TrialStatus.ERRORED)


class ExperimentState(_Named):
    RUNNING = "running"
    FINISHED = "finished"
    #: Ctrl-C, `tunerd stop`, or a driver that died: `tunerd resume` continues it
    INTERRUPTED = "interrupted"
    FAILED = "failed"


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class TrialRecord:
    trial_id: str
    config: dict[str, Any]
    index: int = 0  # creation order (Ray's trial ids are random for some searchers)
    status: TrialStatus = TrialStatus.PENDING
    epochs: int = 0
    planned_epochs: int | None = None
    last: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)  # the report with the best value of the metric
    history: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    error: str | None = None
    error_file: str | None = None  # the full traceback Ray Tune wrote, relative to the experiment folder
    started: str | None = None
    ended: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialRecord:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["status"] = TrialStatus(values.get("status", TrialStatus.PENDING))
        return cls(**values)

    def value(self, metric: str) -> float | None:
        """The trial's best value of `metric`, or None when it has no finite one."""
        value = self.best.get(metric)
        return value if is_finite_number(value) else None


def _rank_key(trial: TrialRecord, metric: str, mode: str) -> tuple[float, int]:
    value = trial.value(metric)
    assert value is not None
    return (-value if mode == "max" else value), trial.index


def rank_trials(trials: Iterable[TrialRecord], metric: str, mode: str) -> list[TrialRecord]:
    """Trials best first by their best value of `metric` (ties: the earlier trial first); those with no
    finite value last, in start order. The one ranking of tunerd: records, reports, leaderboards, plots."""
    trials = list(trials)
    scored = sorted((t for t in trials if t.value(metric) is not None), key=lambda t: _rank_key(t, metric, mode))
    return scored + sorted((t for t in trials if t.value(metric) is None), key=lambda t: t.index)


def best_trial(trials: Iterable[TrialRecord], metric: str, mode: str) -> TrialRecord | None:
    """`rank_trials(...)[0]` without sorting (asked for on every write and redraw of a running experiment)."""
    scored = [t for t in trials if t.value(metric) is not None]
    return min(scored, key=lambda t: _rank_key(t, metric, mode)) if scored else None


@dataclass
class BestTrial:
    trial_id: str
    config: dict[str, Any]
    #: its best value of the experiment's metric
    metric: float
    #: the epoch that value was reported at, and how many epochs the trial ran
    epoch: int | None
    epochs: int
    checkpoint: str | None = None


@dataclass
class Summary:
    """`summary.json`: the experiment, its best trial, its test score and every trial."""

    name: str
    metric: str
    mode: str
    trial_count: int
    state: ExperimentState = ExperimentState.RUNNING
    started: str | None = None
    updated: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    best: BestTrial | None = None
    #: the search algorithm that ran: `name`, and when `auto` picked it, `chosen_by` and `why`
    algorithm: dict[str, Any] | None = None
    #: the best trial scored once on the held-out test split
    test: dict[str, Any] | None = None
    #: the int8 copy's accuracy and size (`export.quantize`)
    export: dict[str, Any] | None = None
    #: why the experiment failed
    error: str | None = None
    #: who runs it: host and pid (and the embedded Ray's processes), for `status` and `resume`
    driver: dict[str, Any] | None = None
    trials: list[TrialRecord] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Summary:
        """Read `summary.json`'s content; a ValueError (KeyError, TypeError) when it is not one."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["state"] = ExperimentState(values.get("state", ExperimentState.RUNNING))
        values["trials"] = [TrialRecord.from_json(t) for t in values.get("trials") or []]
        values["best"] = BestTrial(**data["best"]) if data.get("best") else None
        values.setdefault("trial_count", len(values["trials"]))
        return cls(**values)

    def header(self) -> dict[str, Any]:
        """Everything but the trials, as JSON-ready values (in the file's order)."""
        header = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trials"}
        header["best"] = asdict(self.best) if self.best is not None else None
        return {key: value for key, value in header.items()
                if value is not None or key in ("best", "test")}

    def to_json(self) -> dict[str, Any]:
        return {**self.header(), "trials": [asdict(t) for t in self.trials]}

    def ranked(self) -> list[TrialRecord]:
        return rank_trials(self.trials, self.metric, self.mode)

    @property
    def done(self) -> int:
        """Trials that have ended, however."""
        return sum(n for status, n in self.counts.items() if TrialStatus(status).ended)


def count_statuses(trials: Iterable[TrialRecord], trial_count: int) -> dict[str, int]:
    """Trials per status, every status present; trials not yet created count as pending."""
    counts = {status.value: 0 for status in TrialStatus}
    created = 0
    for trial in trials:
        counts[trial.status.value] += 1
        created += 1
    counts[TrialStatus.PENDING.value] += max(0, trial_count - created)
    return counts
