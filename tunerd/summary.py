"""The schema of `summary.json` (SPEC §3) as typed objects, and the one order in which trials rank.

The running experiment writes it (`tunerd.results.ExperimentRecord`); `status`, `show`, `resume`, the end of
a run, `leaderboard.csv` and the plots read it back through `Summary.from_json`, so every reader sees the
same fields and the same ranking. No Ray, no torch: reading an experiment is instant.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import Any

from tunerd.objectives import Goal, is_finite_number, pareto_ranks


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


@dataclass
class TrialRecord:
    trial_id: str
    config: dict[str, Any]
    index: int = 0  # creation order (Ray's trial ids are random for some searchers)
    status: TrialStatus = TrialStatus.PENDING
    epochs: int = 0
    planned_epochs: int | None = None
    last: dict[str, Any] = field(default_factory=dict)
    #: the trial's result: its best report (`Goal.better_report`; with one metric, its best value of it)
    best: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    retries: int = 0
    error: str | None = None
    error_file: str | None = None  # the full traceback Ray Tune wrote, relative to the experiment folder
    started: str | None = None
    ended: str | None = None
    #: its result meets every constraint (None: no result yet)
    feasible: bool | None = None

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


def rank_trials(trials: Iterable[TrialRecord], goal: Goal) -> list[TrialRecord]:
    """Trials best first (`tunerd.objectives`: feasible first, then Pareto rank, then the `select` objective;
    ties: the earlier trial first); those with no result last, in start order. The one ranking of tunerd:
    records, reports, leaderboards, plots."""
    trials = list(trials)
    scored = [(t, goal.report_key(t.best)) for t in trials]
    unscored = sorted((t for t, key in scored if key is None), key=lambda t: t.index)
    scored = [(t, key) for t, key in scored if key is not None]
    fronts = pareto_ranks_by_id([t for t, key in scored if key[0] == 0], goal) if goal.is_multi else {}
    ordered = sorted(scored, key=lambda tk: (tk[1][0] > 0, fronts.get(tk[0].trial_id, 0), *tk[1], tk[0].index))
    return [t for t, _ in ordered] + unscored


def best_trial(trials: Iterable[TrialRecord], goal: Goal) -> TrialRecord | None:
    """`rank_trials(...)[0]` without sorting (asked for on every write and redraw of a running experiment):
    the best `select` objective among feasible trials (the least violation when none is)."""
    scored = [(goal.report_key(t.best), t.index, t) for t in trials]
    scored = [entry for entry in scored if entry[0] is not None]
    return min(scored, key=lambda entry: (entry[0], entry[1]))[2] if scored else None


def pareto_front(trials: Iterable[TrialRecord], goal: Goal) -> list[TrialRecord]:
    """The feasible trials no other feasible trial dominates, in start order."""
    trials = list(trials)
    fronts = pareto_ranks_by_id(trials, goal)
    return sorted((t for t in trials if fronts.get(t.trial_id) == 0), key=lambda t: t.index)


def pareto_ranks_by_id(trials: list[TrialRecord], goal: Goal) -> dict[str, int]:
    """Pareto rank by trial id of the feasible trials with a result."""
    points = [(t.trial_id, goal.point(t.best)) for t in trials if goal.feasible(t.best)]
    points = [(trial_id, point) for trial_id, point in points if point is not None]
    return dict(zip((trial_id for trial_id, _ in points), pareto_ranks([point for _, point in points])))


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
    #: what it optimises: every objective (`metric`/`mode` above: the `select` one, which picks `best`)
    objectives: list[dict[str, str]] = field(default_factory=list)
    #: `{metric: {min, max}}` a trial's result must meet to be feasible
    constraints: dict[str, dict[str, float]] | None = None
    #: with several objectives: the trial ids of the Pareto front among the feasible trials
    pareto: list[str] | None = None
    #: the search algorithm that ran: `name`, and when `auto` picked it, `chosen_by` and `why`
    algorithm: dict[str, Any] | None = None
    #: `search.warm_start`: per earlier experiment, its observations and what was left out (`tunerd.warmstart`)
    warm_start: list[dict[str, Any]] | None = None
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

    def goal(self) -> Goal:
        """What the experiment optimises (a summary written before `objectives` existed: its metric)."""
        return Goal.from_dicts(self.objectives or [{"metric": self.metric, "mode": self.mode}], self.constraints,
                               self.metric)

    def ranked(self) -> list[TrialRecord]:
        return rank_trials(self.trials, self.goal())

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
