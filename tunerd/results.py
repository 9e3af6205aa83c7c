"""tunerd's own record of an experiment: `summary.json` and `leaderboard.csv`, always written atomically.

Ray keeps its own files too, but a kill during its periodic sync can leave them empty; this record is
written by the driver after every change (temp file, then rename) so it is never half-written.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ray.tune import Callback
from ray.tune.result import (
    AUTO_RESULT_KEYS,
    DEBUG_METRICS,
    DEFAULT_EXPERIMENT_INFO_KEYS,
    DONE,
    SHOULD_CHECKPOINT,
    TRAINING_ITERATION,
)

from trainables.files import write_atomic
from tunerd.objectives import Goal
from tunerd.space import flatten
from tunerd.summary import (
    BestTrial,
    ExperimentState,
    Summary,
    TrialRecord,
    TrialStatus,
    best_trial,
    count_statuses,
    is_finite_number,
    pareto_front,
    pareto_ranks_by_id,
    rank_trials,
)

T = TypeVar("T")

#: the keys Ray Tune adds to every report (bookkeeping, not the trainable's metrics)
RAY_RESULT_KEYS = frozenset((*AUTO_RESULT_KEYS, *DEBUG_METRICS, *DEFAULT_EXPERIMENT_INFO_KEYS, DONE,
                             SHOULD_CHECKPOINT))
#: the per-epoch scalars kept in a trial's history, with the experiment's metric (for learning curves and
#: over/under-fitting diagnosis)
HISTORY_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "generalization_gap")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def compact_json(value: Any) -> str:
    """`value` as one line of JSON, as `_jsonable` would make it, but fast: json's C encoder (used only
    without `indent`) does the common case; a value it refuses (NaN, an odd key) takes the slow path."""
    try:
        return json.dumps(value, allow_nan=False, default=_plain)
    except (ValueError, TypeError):
        return json.dumps(_jsonable(value), allow_nan=False)


def _plain(value: Any) -> Any:
    """What json cannot encode itself: numpy / torch scalars as Python numbers, anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


def _jsonable(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (a diverged loss is recorded by its status)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "item"):  # numpy / torch scalars
        return _jsonable(value.item())
    return str(value)


def _scalars(result: dict[str, Any]) -> dict[str, Any]:
    """The trainable's own metrics from a Ray result (Ray's bookkeeping keys left out). A trainable that
    reports no `epoch` gets Ray's `training_iteration` as its epoch (one report, one epoch)."""
    metrics = {k: v for k, v in result.items()
               if k not in RAY_RESULT_KEYS and isinstance(v, (int, float, bool, str)) and v is not None}
    if "epoch" not in metrics and is_finite_number(result.get(TRAINING_ITERATION)):
        metrics["epoch"] = int(result[TRAINING_ITERATION])
    return metrics


class ExperimentRecord:
    """The live state of one experiment, and its rendering to `summary.json` / `leaderboard.csv`."""

    def __init__(self, folder: str | os.PathLike[str], *, name: str, goal: Goal,
                 trial_count: int, started: str | None = None,
                 on_write: Callable[[Path], None] | None = None) -> None:
        self.folder = Path(folder)
        self.on_write = on_write  # e.g. copies the file to a remote storage (tunerd.storage)
        self.name = name
        self.goal = goal
        #: the `select` objective: the one a trial's `best` and the experiment's best are named by
        self.metric = goal.select
        self.mode = goal.selected.mode
        self.trial_count = trial_count
        self.started = started or now_iso()
        self.state = ExperimentState.RUNNING
        self.trials: dict[str, TrialRecord] = {}
        self.best_checkpoint: str | None = None
        self.test: dict[str, Any] | None = None
        self.export: dict[str, Any] | None = None
        self.error: str | None = None
        self.driver: dict[str, Any] | None = None
        self.algorithm: dict[str, Any] | None = None
        self.warm_start: list[dict[str, Any]] | None = None

    @classmethod
    def from_summary(cls, folder: str | os.PathLike[str], summary: Summary,
                     on_write: Callable[[Path], None] | None = None) -> ExperimentRecord:
        """The record a killed or interrupted run left in `summary.json`, to go on with (`tunerd resume`)."""
        record = cls(folder, name=summary.name, goal=summary.goal(), trial_count=summary.trial_count,
                     started=summary.started, on_write=on_write)
        record.trials = {trial.trial_id: trial for trial in summary.trials}
        record.test, record.export, record.algorithm = summary.test, summary.export, summary.algorithm
        record.warm_start = summary.warm_start
        return record

    # --- updates ------------------------------------------------------------------------------------------
    def trial(self, trial_id: str, config: dict[str, Any], index: int | None = None) -> TrialRecord:
        """The trial's record, created on first sight with `index` (its place in Ray Tune's list of trials)
        unless another trial has it, else the next number: a trial keeps the index it was first given, and no
        two share one (Ray Tune re-orders its list on `Tuner.restore`: by last result, newest first)."""
        if trial_id not in self.trials:
            taken = {t.index for t in self.trials.values()}
            if index is None or index in taken:
                index = max(taken, default=-1) + 1
            self.trials[trial_id] = TrialRecord(trial_id=trial_id, config=config, index=index)
        return self.trials[trial_id]

    def started_trial(self, trial_id: str, config: dict[str, Any], index: int) -> None:
        record = self.trial(trial_id, config, index)
        record.status = TrialStatus.RUNNING
        record.started = record.started or now_iso()

    def add_result(self, trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> None:
        record = self.trial(trial_id, config)
        metrics = _scalars(result)
        if has_diverged(result, self.metric):
            metrics["diverged"] = True
        record.status = TrialStatus.RUNNING
        record.epochs = int(metrics.get("epoch", record.epochs + 1))
        if "planned_epochs" in metrics:
            record.planned_epochs = int(metrics["planned_epochs"])
        record.last = metrics
        self._offer(record, metrics)
        record.history = [h for h in record.history if h.get("epoch", 0) < record.epochs]
        record.history.append({k: metrics[k] for k in (*HISTORY_KEYS, *self.goal.metrics) if k in metrics})

    def ended_trial(self, trial_id: str, config: dict[str, Any], *, max_epochs: int) -> TrialRecord:
        record = self.trial(trial_id, config)
        planned = record.planned_epochs or max_epochs
        if record.last.get("diverged"):
            record.status = TrialStatus.DIVERGED
        elif record.last.get("early_stopped") or record.epochs < planned:
            record.status = TrialStatus.STOPPED
        else:
            record.status = TrialStatus.FINISHED
        record.ended = now_iso()
        return record

    def errored_trial(self, trial_id: str, config: dict[str, Any], error: str | None,
                      error_file: str | os.PathLike[str] | None = None) -> None:
        """`error_file`: where Ray Tune wrote the trial's traceback (its trial folder's error.txt, local or
        not yet synced); recorded as the same file inside the experiment folder, where it lands."""
        record = self.trial(trial_id, config)
        record.status = TrialStatus.ERRORED
        record.error = error or "the trial failed (no error message was recorded)"
        if error_file:
            record.error_file = f"{Path(error_file).parent.name}/{Path(error_file).name}"
        record.ended = now_iso()

    def retried_trial(self, trial_id: str, config: dict[str, Any]) -> None:
        record = self.trial(trial_id, config)
        record.retries += 1
        record.status = TrialStatus.RUNNING

    def forget_trials_ray_lost(self, known: set[str]) -> list[TrialRecord]:
        """Drop the trials Ray Tune's restored state does not hold (`known`: the trial ids it does); returns
        them. A trial that started after Tune last saved its state (it does every few seconds), before the
        driver was killed, is in `summary.json` but not in that state: the searcher, restored to the same
        moment, suggests its configuration again as a new trial, so the old record would be a second,
        never-ending copy of it (found by the soak, `benchmarks/reliability.py --soak`)."""
        lost = [record for trial_id, record in self.trials.items() if trial_id not in known]
        for record in lost:
            del self.trials[record.trial_id]
        return lost

    def reconcile(self, results: Any, *, max_epochs: int) -> None:
        """Bring trials the callbacks never saw end up to date from Ray Tune's own results (its ResultGrid).

        After a driver was killed, Tune's saved state can be ahead of `summary.json` (which is written at most
        once a second): a trial Tune already counts as done is not run again by `resume`, so no callback
        reports its last epochs or its end, and one restarted from its last checkpoint may end without a
        new report. Their reported rows are in Tune's results; take the missing ones from there.
        """
        for result in results:
            metrics = result.metrics or {}
            trial_id = metrics.get("trial_id")
            if not trial_id:
                continue
            known = self.trials.get(trial_id)
            last_epoch = int(metrics.get("epoch") or metrics.get(TRAINING_ITERATION) or 0)
            if last_epoch == 0 and result.error is None:
                continue  # never reported (e.g. still pending when a time budget ended the run): nothing to add
            behind = known is None or not known.status.ended or (
                known.status in (TrialStatus.FINISHED, TrialStatus.STOPPED) and last_epoch > known.epochs)
            config = result.config or metrics.get("config") or {}
            frame = result.metrics_dataframe
            rows = frame.to_dict("records") if frame is not None and len(frame) else [metrics]
            rows = [{k: v.item() if hasattr(v, "item") else v for k, v in row.items()} for row in rows]
            rows = [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))} for row in rows]
            if known is not None:
                self._fill_history(known, rows)
            if not behind:
                continue
            for row in rows:
                epoch = int(row.get("epoch") or row.get(TRAINING_ITERATION) or 0)
                if epoch > self.trial(trial_id, config).epochs:
                    self.add_result(trial_id, config, row)
            if result.error is not None:
                self.errored_trial(trial_id, config, error_summary(str(result.error)),
                                   Path(result.path) / "error.txt" if result.path else None)
            else:
                self.ended_trial(trial_id, config, max_epochs=max_epochs)

    def _offer(self, record: TrialRecord, metrics: dict[str, Any]) -> None:
        """`metrics` become the trial's result when they beat it (`beats`); `feasible` follows its result."""
        if beats(self.goal, metrics, record.best):
            record.best = metrics
            record.feasible = self.goal.feasible(metrics)

    def _fill_history(self, record: TrialRecord, rows: list[dict[str, Any]]) -> None:
        """The epochs Ray Tune recorded that the record missed: a trial that started after `summary.json`'s
        last write before a driver was killed, then resumed from its checkpoint, was seen by this driver
        from its resumed epoch on only. Its earlier reports (and a better best among them) come from Ray's
        per-trial results."""
        seen = {h.get("epoch") for h in record.history}
        missing = []
        for row in rows:
            metrics = _scalars(row)
            epoch = metrics.get("epoch")
            if is_finite_number(epoch) and epoch not in seen and epoch <= record.epochs:
                missing.append(metrics)
                seen.add(epoch)
        if not missing:
            return
        for metrics in missing:
            record.history.append({k: metrics[k] for k in (*HISTORY_KEYS, *self.goal.metrics) if k in metrics})
            self._offer(record, metrics)
        record.history.sort(key=lambda h: h.get("epoch", 0))

    # --- queries ------------------------------------------------------------------------------------------
    def ranked(self) -> list[TrialRecord]:
        """Trials best first (`tunerd.summary.rank_trials`)."""
        return rank_trials(self.trials.values(), self.goal)

    def best(self) -> TrialRecord | None:
        return best_trial(self.trials.values(), self.goal)

    def counts(self) -> dict[str, int]:
        return count_statuses(self.trials.values(), self.trial_count)

    # --- rendering ----------------------------------------------------------------------------------------
    def summary(self) -> Summary:
        best = self.best()
        objectives, constraints = self.goal.as_dicts()
        pareto = [t.trial_id for t in pareto_front(self.trials.values(), self.goal)] if self.goal.is_multi else None
        return Summary(
            name=self.name, state=self.state, metric=self.metric, mode=self.mode, started=self.started,
            updated=now_iso(), trial_count=self.trial_count, counts=self.counts(),
            best=None if best is None else BestTrial(
                trial_id=best.trial_id, config=best.config, metric=best.best[self.metric],
                epoch=best.best.get("epoch"), epochs=best.epochs, checkpoint=self.best_checkpoint),
            objectives=objectives, constraints=constraints or None, pareto=pareto,
            algorithm=self.algorithm, warm_start=self.warm_start, test=self.test, export=self.export,
            error=self.error, driver=self.driver,
            trials=self._in_order())

    def _in_order(self) -> list[TrialRecord]:
        return sorted(self.trials.values(), key=lambda t: t.index)

    def summary_text(self) -> str:
        """`summary.json`'s text: the header indented, then one line per trial.

        Written about once a second for the whole run, so its cost per trial matters: `indent` puts every
        value through json's pure-Python encoder and `asdict` deep-copies every trial; one line per trial
        from json's C encoder keeps the file readable at a quarter of the cost (200 trials of 3 epochs:
        10 ms a write instead of 44 ms; 800 trials: 25 ms instead of 131 ms).
        """
        summary = self.summary()
        head = json.dumps(_jsonable(summary.header()), indent=2, allow_nan=False)
        names = [f.name for f in fields(TrialRecord)]
        rows = ",\n".join("    " + compact_json({name: getattr(t, name) for name in names}) for t in summary.trials)
        trials = f"[\n{rows}\n  ]" if rows else "[]"
        return f'{head[:-2]},\n  "trials": {trials}\n}}\n'  # head ends with "\n}"

    def write(self) -> None:
        self._written(self.folder / "summary.json", self.summary_text())

    def _written(self, path: Path, text: str) -> None:
        write_atomic(path, text)
        if self.on_write is not None:
            self.on_write(path)

    def write_leaderboard(self) -> None:
        """`leaderboard.csv`: trials in rank order; with several objectives a `pareto_rank` column (0: the
        front), with constraints a `feasible` one."""
        rows = self.ranked()
        fronts = pareto_ranks_by_id(rows, self.goal) if self.goal.is_multi else {}
        extra = [*(["pareto_rank"] if self.goal.is_multi else []), *(["feasible"] if self.goal.constraints else [])]
        metric_keys = sorted({k for t in rows for k in t.best if k not in ("diverged", "early_stopped")})
        config_keys = sorted({k for t in rows for k in flatten(t.config)})
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["rank", "trial_id", "status", "epochs", *extra, *metric_keys,
                         *[f"config/{k}" for k in config_keys], "error"])
        for rank, t in enumerate(rows, 1):
            flat = flatten(t.config)
            marks = {"pareto_rank": fronts.get(t.trial_id, ""), "feasible": "" if t.feasible is None else t.feasible}
            writer.writerow([rank, t.trial_id, t.status, t.epochs, *[marks[key] for key in extra],
                             *[t.best.get(k, "") for k in metric_keys],
                             *[flat.get(k, "") for k in config_keys], t.error or ""])
        self._written(self.folder / "leaderboard.csv", buffer.getvalue())


def beats(goal: Goal, report: dict[str, Any], best: dict[str, Any]) -> bool:
    """Whether `report` becomes the trial's result instead of `best`: the better one by the goal, except
    that a pruned model's report (`pruned: true`, the `prune` knob) always beats a dense one's and never
    loses to it, because only a pruned checkpoint is exported for such a trial."""
    pruned, was_pruned = report.get("pruned"), best.get("pruned") if best else None
    if pruned is True and was_pruned is False:
        return goal.point(report) is not None
    if pruned is False and was_pruned is True:
        return False
    return goal.better_report(report, best)


def best_of(goal: Goal, candidates: Iterable[tuple[T, dict[str, Any]]]) -> T | None:
    """The item whose report is the best by `beats` (the first of equals), of `(item, report)` pairs: the
    trial's checkpoint that becomes `best/` (the runner, `tunerd export`). None when no report has a point."""
    best: tuple[T, dict[str, Any]] | None = None
    for item, report in candidates:
        if beats(goal, report, best[1] if best else {}):
            best = (item, report)
    return best[0] if best is not None else None


def has_diverged(result: dict[str, Any], metric: str) -> bool:
    """A report says the trial diverged: the built-ins say so (`diverged`); for a user's trainable, the
    optimised metric or a loss (`loss`, `*_loss`) is NaN or infinite. Such a trial is ended and recorded as
    `diverged`: it is a result of its configuration (a too-high learning rate), not an error to retry."""
    if result.get("diverged"):
        return True
    return any(isinstance(value, float) and not math.isfinite(value) for key, value in result.items()
               if key == metric or key == "loss" or key.endswith("_loss"))


def error_summary(text: str | None) -> str | None:
    """The line of a traceback a user needs: the exception and its message."""
    if not text:
        return None
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if not line.startswith(("File ", "^", "~")) and ("Error" in line or "Exception" in line):
            return line
    return lines[-1] if lines else None


class RecordCallback(Callback):
    """Keeps `summary.json` current as trials start, report, end, fail and retry (driver side).

    The file is rewritten at most every `min_interval_s` (a change in between is written by the first
    event or Tune step after the interval, so it is never more than about that late), and at the end.
    Writing it on every trial's end made a run of n short trials cost O(n^2): 200 one-report trials spent
    a third of the driver's time rewriting it. A driver killed in between loses at most that second:
    `ExperimentRecord.reconcile` fills it in from Tune's own results when the run is resumed.
    """

    def __init__(self, record: ExperimentRecord, *, max_epochs: int, min_interval_s: float = 1.0) -> None:
        self.record = record
        self.max_epochs = max_epochs
        self.min_interval_s = min_interval_s
        self._last_write = 0.0
        self._dirty = False

    def _save(self, force: bool = False) -> None:
        self._dirty = True
        self._flush(force)

    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._dirty and (force or now - self._last_write >= self.min_interval_s):
            self.record.write()
            self._last_write = now
            self._dirty = False

    def on_step_end(self, iteration, trials, **info):
        self._flush()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.record.started_trial(trial.trial_id, trial.config, trials.index(trial))
        self._save()

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.record.add_result(trial.trial_id, trial.config, result)
        self._save()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.record.ended_trial(trial.trial_id, trial.config, max_epochs=self.max_epochs)
        self._save()

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.record.retried_trial(trial.trial_id, trial.config)
        self._save()

    def on_trial_error(self, iteration, trials, trial, **info):
        text = None
        if trial.error_file and Path(trial.error_file).exists():
            text = Path(trial.error_file).read_text(errors="replace")
        self.record.errored_trial(trial.trial_id, trial.config, error_summary(text), trial.error_file)
        self._save()

    def on_experiment_end(self, trials, **info):
        self._save(force=True)
