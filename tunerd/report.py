"""What `tunerd status` and `tunerd show` tell, read from the files an experiment keeps current on disk
(`summary.json`, `spec.yaml`): no Ray is needed, and it is right while the experiment runs elsewhere."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import yaml

from tunerd.errors import UsageError
from tunerd.spec import did_you_mean
from tunerd.storage import list_folders, read_text

#: a trial whose training accuracy stays below this has not learnt its training split: underfitting
UNDERFIT_TRAIN_ACCURACY = 0.7
#: overfitting needs the validation loss this much (relative) above its minimum, and the gap this much wider
OVERFIT_LOSS_RISE = 0.10
OVERFIT_GAP_GROWTH = 0.02


def driver_identity() -> dict[str, Any]:
    """Who runs an experiment: written into `summary.json` so `status` can tell a crashed driver."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def read_summary(storage: str, name: str) -> dict[str, Any]:
    """The experiment's `summary.json`; a UsageError naming the storage (and close names) when missing."""
    text = read_text(storage, f"{name}/summary.json")
    if text is None:
        known = [n for n in list_folders(storage) if read_text(storage, f"{n}/summary.json") is not None]
        raise UsageError(f"no experiment {name!r} in storage {storage}{did_you_mean(name, known)}"
                         + (f"; experiments there: {', '.join(known)}" if known else "; it holds no experiment"))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{storage}/{name}/summary.json is not valid JSON ({exc})") from None


def read_spec(storage: str, name: str) -> dict[str, Any]:
    text = read_text(storage, f"{name}/spec.yaml")
    return (yaml.safe_load(text) or {}) if text else {}


def effective_state(summary: dict[str, Any]) -> str:
    """The recorded state, except that a `running` experiment whose driver process is gone (killed, the
    machine rebooted) is `interrupted`: it will never write another line. Only checkable on its host."""
    state = summary.get("state", "unknown")
    driver = summary.get("driver") or {}
    if state == "running" and driver.get("host") == socket.gethostname() and not process_alive(driver.get("pid")):
        return "interrupted"
    return state


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
    state: str
    done: int
    total: int
    metric: str
    mode: str
    best: float | None
    started: str | None
    duration_s: float | None


def status(storage: str) -> list[StatusRow]:
    """One row per experiment under `storage`, oldest first."""
    rows = []
    for name in list_folders(storage):
        text = read_text(storage, f"{name}/summary.json")
        if text is None:
            continue
        try:
            summary = json.loads(text)
        except json.JSONDecodeError:
            continue
        state = effective_state(summary)
        counts = summary.get("counts", {})
        started, updated = _parse_time(summary.get("started")), _parse_time(summary.get("updated"))
        end = datetime.now(timezone.utc) if state == "running" else updated
        rows.append(StatusRow(
            name=summary.get("name", name), state=state,
            done=sum(counts.get(k, 0) for k in ("finished", "stopped", "diverged", "errored")),
            total=summary.get("trial_count", len(summary.get("trials", []))),
            metric=summary.get("metric", ""), mode=summary.get("mode", ""),
            best=(summary.get("best") or {}).get("metric"), started=summary.get("started"),
            duration_s=(end - started).total_seconds() if started and end else None))
    rows.sort(key=lambda row: row.started or "")
    return rows


def diagnose(trial: dict[str, Any], *, scheduler: str, max_epochs: int | None = None) -> list[str]:
    """Plain-language findings for one trial, from its status and its per-epoch history."""
    status, epochs, last = trial.get("status"), trial.get("epochs", 0), trial.get("last") or {}
    findings: list[str] = []
    if status == "errored":
        first_line = (trial.get("error") or "").strip().splitlines()
        findings.append(f"errored: {first_line[0] if first_line else 'no error message was recorded'}")
    elif status == "diverged":
        findings.append(f"diverged: a non-finite loss at epoch {epochs}")
    elif status == "stopped":
        planned = trial.get("planned_epochs") or max_epochs
        if last.get("early_stopped"):
            findings.append(f"ended itself at epoch {epochs}: no improvement for early_stopping_patience epochs")
        else:
            findings.append(f"stopped early by {scheduler.upper() if scheduler == 'asha' else scheduler} "
                            f"at epoch {epochs}" + (f" of {planned}" if planned else ""))
    history = [h for h in trial.get("history") or [] if isinstance(h.get("val_loss"), (int, float))]
    overfit = _overfitting(history)
    if overfit:
        findings.append(overfit)
    train_accuracy = last.get("train_accuracy")
    if status != "diverged" and isinstance(train_accuracy, (int, float)) and \
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


def show(storage: str, name: str, *, top: int = 10) -> dict[str, Any]:
    """Everything `tunerd show` prints (and `--json` writes): leaderboard, best, test, diagnosis."""
    summary = read_summary(storage, name)
    spec = read_spec(storage, name)
    scheduler = (spec.get("scheduler") or {}).get("name", "the scheduler")
    max_epochs = (spec.get("stop") or {}).get("max_epochs")
    metric, mode = summary["metric"], summary["mode"]
    ranked = sorted((t for t in summary.get("trials", []) if metric in (t.get("best") or {})),
                    key=lambda t: t["best"][metric], reverse=mode == "max")
    unranked = [t for t in summary.get("trials", []) if t not in ranked]
    trials = []
    for rank, trial in enumerate([*ranked, *unranked], 1):
        trials.append({"rank": rank if trial in ranked else None, "trial_id": trial["trial_id"],
                       "status": trial.get("status"), "epochs": trial.get("epochs"),
                       metric: (trial.get("best") or {}).get(metric), "config": trial.get("config"),
                       "diagnosis": diagnose(trial, scheduler=scheduler, max_epochs=max_epochs), "history": trial.get("history", [])})
    return {"name": summary.get("name", name), "state": effective_state(summary), "metric": metric,
            "mode": mode, "trial_count": summary.get("trial_count"), "counts": summary.get("counts"),
            "started": summary.get("started"), "updated": summary.get("updated"),
            "best": summary.get("best"), "test": summary.get("test"), "export": summary.get("export"),
            "leaderboard": trials[:top], "trials": trials}


def as_dict(row: StatusRow) -> dict[str, Any]:
    return asdict(row)
