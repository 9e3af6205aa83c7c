"""What `tunerd status` and `tunerd show` tell, read from the files an experiment keeps current on disk
(`summary.json`, `spec.yaml`): no Ray is needed, and it is right while the experiment runs elsewhere."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import yaml

from tunerd.errors import UsageError, did_you_mean
from tunerd.storage import list_folders, read_text
from tunerd.summary import ExperimentState, Summary, TrialRecord, TrialStatus

#: a trial whose training accuracy stays below this has not learnt its training split: underfitting
UNDERFIT_TRAIN_ACCURACY = 0.7
#: overfitting needs the validation loss this much (relative) above its minimum, and the gap this much wider
OVERFIT_LOSS_RISE = 0.10
OVERFIT_GAP_GROWTH = 0.02


#: the state `status` shows for an experiment whose summary.json cannot be read
DAMAGED = "damaged"


def driver_identity() -> dict[str, Any]:
    """Who runs an experiment: written into `summary.json` so `status` can tell a crashed driver."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def read_summary(storage: str, name: str) -> Summary:
    """The experiment's `summary.json`; a UsageError naming the storage (and close names) when missing, or
    the file when it is not a summary."""
    text = read_text(storage, f"{name}/summary.json")
    if text is None:
        known = [n for n in list_folders(storage) if read_text(storage, f"{n}/summary.json") is not None]
        raise UsageError(f"no experiment {name!r} in storage {storage}{did_you_mean(name, known)}"
                         + (f"; experiments there: {', '.join(known)}" if known else "; it holds no experiment"))
    return parse_summary(text, f"{storage.rstrip('/')}/{name}/summary.json")


def parse_summary(text: str, where: str) -> Summary:
    """`summary.json`'s text as a Summary; a UsageError naming the file when it is damaged (truncated,
    garbage, or another program's JSON)."""
    try:
        return Summary.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where} is damaged: not valid JSON ({exc})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"{where} is damaged: not a tunerd summary ({type(exc).__name__}: {exc})") from None


def read_spec(storage: str, name: str) -> dict[str, Any]:
    """The experiment's resolved `spec.yaml` ({} when there is none); a UsageError naming the file when it is
    damaged (not YAML, or not a mapping)."""
    text = read_text(storage, f"{name}/spec.yaml")
    if not text:
        return {}
    where = f"{storage.rstrip('/')}/{name}/spec.yaml"
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{where} is damaged: not valid YAML ({' '.join(str(exc).split())})") from None
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        raise UsageError(f"{where} is damaged: it holds a {type(spec).__name__}, not the experiment's keys")
    return spec


def effective_state(summary: Summary) -> ExperimentState:
    """The recorded state, except that a `running` experiment whose driver process is gone (killed, the
    machine rebooted) is `interrupted`: it will never write another line. Only checkable on its host."""
    driver = summary.driver or {}
    if summary.state == ExperimentState.RUNNING and driver.get("host") == socket.gethostname() \
            and not process_alive(driver.get("pid")):
        return ExperimentState.INTERRUPTED
    return summary.state


def process_alive(pid: Any) -> bool:
    """Whether a process of this host runs under `pid` (another user's counts as running)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


@dataclass
class StatusRow:
    name: str
    state: ExperimentState | str  # "damaged": its summary.json cannot be read (`error` says why)
    done: int
    total: int
    metric: str
    mode: str
    best: float | None
    started: str | None
    duration_s: float | None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def status(storage: str) -> list[StatusRow]:
    """One row per experiment under `storage`, oldest first; a folder without a summary.json is skipped, one
    whose summary.json is damaged is a `damaged` row with the error (listed last)."""
    rows = []
    for name in list_folders(storage):
        text = read_text(storage, f"{name}/summary.json")
        if text is None:
            continue
        try:
            summary = parse_summary(text, f"{storage.rstrip('/')}/{name}/summary.json")
        except UsageError as exc:
            rows.append(StatusRow(name=name, state=DAMAGED, done=0, total=0, metric="", mode="", best=None,
                                  started=None, duration_s=None, error=str(exc)))
            continue
        state = effective_state(summary)
        started, updated = _parse_time(summary.started), _parse_time(summary.updated)
        end = datetime.now(timezone.utc) if state == ExperimentState.RUNNING else updated
        rows.append(StatusRow(
            name=summary.name, state=state, done=summary.done, total=summary.trial_count,
            metric=summary.metric, mode=summary.mode, best=summary.best.metric if summary.best else None,
            started=summary.started, duration_s=(end - started).total_seconds() if started and end else None))
    rows.sort(key=lambda row: (row.state == DAMAGED, row.started or ""))
    return rows


def diagnose(trial: TrialRecord, *, scheduler: str, max_epochs: int | None = None) -> list[str]:
    """Plain-language findings for one trial, from its status and its per-epoch history."""
    status, epochs, last = trial.status, trial.epochs, trial.last
    findings: list[str] = []
    if status == TrialStatus.ERRORED:
        first_line = (trial.error or "").strip().splitlines()
        findings.append(f"errored: {first_line[0] if first_line else 'no error message was recorded'}")
    elif status == TrialStatus.DIVERGED:
        findings.append(f"diverged: a non-finite loss at epoch {epochs}")
    elif status == TrialStatus.STOPPED:
        planned = trial.planned_epochs or max_epochs
        if last.get("early_stopped"):
            findings.append(f"ended itself at epoch {epochs}: no improvement for early_stopping_patience epochs")
        else:
            findings.append(f"stopped early by {scheduler.upper() if scheduler == 'asha' else scheduler} "
                            f"at epoch {epochs}" + (f" of {planned}" if planned else ""))
    history = [h for h in trial.history if isinstance(h.get("val_loss"), (int, float))]
    overfit = _overfitting(history)
    if overfit:
        findings.append(overfit)
    train_accuracy = last.get("train_accuracy")
    if status != TrialStatus.DIVERGED and isinstance(train_accuracy, (int, float)) and \
            train_accuracy < UNDERFIT_TRAIN_ACCURACY:
        findings.append(f"underfitting: train accuracy only {train_accuracy:.3f} after {epochs} epochs (the "
                        "model does not fit its training split: more capacity, another lr, or more epochs)")
    return findings


def _overfitting(history: list[dict[str, Any]]) -> str | None:
    """The validation loss well above its minimum while the model keeps fitting its training split better
    (train loss still falling, or the train-val accuracy gap widening)."""
    if len(history) < 3:
        return None
    low = min(range(len(history)), key=lambda i: history[i]["val_loss"])
    then, end = history[low], history[-1]
    if low == len(history) - 1 or end["val_loss"] < then["val_loss"] * (1 + OVERFIT_LOSS_RISE):
        return None
    gap_then, gap_now = then.get("generalization_gap"), end.get("generalization_gap")
    gap_grew = _number(gap_then) and _number(gap_now) and gap_now >= gap_then + OVERFIT_GAP_GROWTH
    train_fell = _number(then.get("train_loss")) and _number(end.get("train_loss")) and \
        end["train_loss"] < then["train_loss"]
    if not (gap_grew or train_fell):
        return None
    detail = (f"train loss {then['train_loss']:.4f} -> {end['train_loss']:.4f}" if train_fell else "")
    if _number(gap_then) and _number(gap_now):
        detail += (", " if detail else "") + f"train-val accuracy gap {gap_then:.3f} -> {gap_now:.3f}"
    return (f"overfitting: val loss rose from {then['val_loss']:.4f} (epoch {then.get('epoch')}) to "
            f"{end['val_loss']:.4f} (epoch {end.get('epoch')}) while the training split was fitted ever "
            f"better ({detail})")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class ShownTrial:
    """One trial as `show` lists it: its rank (None without a finite metric), its best value, why it ended."""

    rank: int | None
    trial: TrialRecord
    value: float | None
    diagnosis: list[str]

    def to_json(self, metrics: tuple[str, ...], *, history: bool = True) -> dict[str, Any]:
        row = {"rank": self.rank, "trial_id": self.trial.trial_id, "status": self.trial.status,
               "epochs": self.trial.epochs, **{m: self.trial.value(m) for m in metrics},
               "feasible": self.trial.feasible, "config": self.trial.config, "diagnosis": self.diagnosis}
        return row | ({"history": self.trial.history} if history else {})


@dataclass
class Shown:
    """Everything `tunerd show` prints (and `--json` writes): leaderboard, best, test, diagnosis."""

    summary: Summary
    state: ExperimentState
    trials: list[ShownTrial]
    top: int
    plot: str | None = None
    scheduler: str = field(default="the scheduler")

    @property
    def leaderboard(self) -> list[ShownTrial]:
        return self.trials[:self.top]

    def to_json(self, *, history: bool = True) -> dict[str, Any]:
        summary, metric = self.summary, self.summary.metric
        metrics = summary.goal().metrics
        shown = {"name": summary.name, "state": self.state, "metric": metric, "mode": summary.mode,
                 "objectives": summary.goal().as_dicts()[0], "constraints": summary.constraints,
                 "pareto": summary.pareto,
                 "trial_count": summary.trial_count, "counts": summary.counts, "started": summary.started,
                 "updated": summary.updated, "best": asdict(summary.best) if summary.best else None,
                 "test": summary.test, "export": summary.export,
                 "leaderboard": [t.to_json(metrics, history=history) for t in self.leaderboard],
                 "trials": [t.to_json(metrics, history=history) for t in self.trials]}
        return shown | ({"plot": self.plot} if self.plot else {})


def show(storage: str, name: str, *, top: int = 10) -> Shown:
    """What `tunerd show` prints, read from the experiment's files."""
    summary = read_summary(storage, name)
    spec = read_spec(storage, name)
    scheduler = (spec.get("scheduler") or {}).get("name", "the scheduler")
    max_epochs = (spec.get("stop") or {}).get("max_epochs")
    trials = []
    for rank, trial in enumerate(summary.ranked(), 1):
        value = trial.value(summary.metric)
        trials.append(ShownTrial(rank if value is not None else None, trial, value,
                                 diagnose(trial, scheduler=scheduler, max_epochs=max_epochs)))
    return Shown(summary, effective_state(summary), trials, top, scheduler=scheduler)
