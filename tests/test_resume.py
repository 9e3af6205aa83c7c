"""`tunerd resume` after the driver is killed (SIGKILL) or interrupted (Ctrl-C): finished trials are kept and
not re-run, unfinished ones continue from their last checkpoint, the Ray the dead driver left is stopped."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

SPEC = """\
name: steady
trainable: tests.fixtures.toy:steady
metric: loss
mode: min
space: {x: {grid: [0.0, 1.0, 2.0, 3.0]}, epochs: 8, sleep: 0.4}
search: {algorithm: grid, max_concurrent: 2}
scheduler: {name: fifo}
stop: {max_epochs: 8}
failures: {max_retries: 0}
"""


def tunerd(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tunerd.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def summary_of(storage: Path) -> dict:
    path = storage / "steady" / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def wait_for(storage: Path, ready, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = summary_of(storage)
        if summary and ready(summary["trials"]):
            return summary
        time.sleep(0.3)
    raise AssertionError(f"timed out; last summary: {summary_of(storage)}")


def reports(storage: Path, trial_id: str) -> list[dict]:
    text = (storage / "steady" / f"trial_{trial_id}" / "result.json").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def resume(storage: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunerd.cli", "resume", "steady", "--storage", str(storage)],
                          cwd=REPO, capture_output=True, text=True, timeout=240)


def check_completed(storage: Path, before: dict) -> None:
    after = summary_of(storage)
    assert after["state"] == "finished" and after["trial_count"] == 4
    trials = {t["trial_id"]: t for t in after["trials"]}
    assert len(trials) == 4 and all(t["status"] == "finished" and t["epochs"] == 8 for t in trials.values())
    assert sorted(t["config"]["x"] for t in trials.values()) == [0.0, 1.0, 2.0, 3.0]  # no config repeated
    for trial in trials.values():  # every epoch each trial ran, also one the killed driver never recorded
        assert [h["epoch"] for h in trial["history"]] == list(range(1, 9)), trial
    for old in before["trials"]:
        if old["status"] == "finished":  # kept as it was: not re-run
            assert trials[old["trial_id"]]["ended"] == old["ended"]
            assert [r["epoch"] for r in reports(storage, old["trial_id"])] == list(range(1, 9))
        elif old["status"] == "running" and old["epochs"] >= 2:  # went on from its last checkpoint
            starts = {r["start"] for r in reports(storage, old["trial_id"])}
            assert max(starts) > 1, starts


def test_resume_after_the_driver_was_killed(tmp_path):
    storage = tmp_path / "r"
    (tmp_path / "steady.yaml").write_text(SPEC)
    driver = tunerd("launch", str(tmp_path / "steady.yaml"), "--storage", str(storage), "--quiet")
    try:
        before = wait_for(storage, lambda trials: any(t["status"] == "finished" for t in trials) and any(
            t["status"] == "running" and t["epochs"] >= 2 for t in trials))
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
    finally:
        driver.kill()
        driver.communicate()
    before = summary_of(storage)
    orphans = [pid for pid, _ in before["driver"]["ray"]["processes"]]
    assert any(_alive(pid) for pid in orphans)  # SIGKILL left the embedded Ray running

    status = subprocess.run([sys.executable, "-m", "tunerd.cli", "status", "--storage", str(storage)],
                            capture_output=True, text=True, timeout=60)
    assert status.stdout.splitlines()[1].split()[:2] == ["steady", "interrupted"], status.stdout

    done = resume(storage)
    assert done.returncode == 0, done.stdout + done.stderr
    check_completed(storage, before)
    assert not any(_alive(pid) for pid in orphans)  # resume stopped what the dead driver left behind


def test_ctrl_c_then_the_resume_command_it_prints(tmp_path):
    storage = tmp_path / "r"
    (tmp_path / "steady.yaml").write_text(SPEC)
    driver = tunerd("launch", str(tmp_path / "steady.yaml"), "--storage", str(storage), "--quiet")
    try:
        wait_for(storage, lambda trials: any(t["status"] == "finished" for t in trials))
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=90)
    finally:
        driver.kill()
    assert driver.returncode == 130, out + err
    assert f"tunerd resume steady --storage {storage}" in err
    before = summary_of(storage)
    assert before["state"] == "interrupted"

    again = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(tmp_path / "steady.yaml"),
                            "--storage", str(storage)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "pass --resume to continue it" in again.stderr

    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(tmp_path / "steady.yaml"),
                           "--storage", str(storage), "--resume", "--quiet"], cwd=REPO, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    check_completed(storage, before)
    finished = resume(storage)
    assert finished.returncode == 2 and "has already finished; nothing to resume" in finished.stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_trials_tune_finished_before_the_record_saw_it_are_brought_up_to_date(tmp_path):
    """A kill can leave Tune's state ahead of summary.json: the end of the run fills the record in from
    Tune's results (every reported row), so such a trial is not left `running` with epochs missing."""
    from types import SimpleNamespace

    import pandas as pd

    from tunerd.objectives import Goal
    from tunerd.results import ExperimentRecord

    record = ExperimentRecord(tmp_path, name="x", goal=Goal.single("loss", "min"), trial_count=2)
    record.started_trial("t_1", {"x": 1.0}, 0)
    record.add_result("t_1", {"x": 1.0}, {"epoch": 1, "loss": 3.0})
    rows = pd.DataFrame([{"epoch": e, "loss": 4.0 - e, "trial_id": "t_1"} for e in (1, 2, 3)])
    done = SimpleNamespace(metrics={"trial_id": "t_1", "epoch": 3, "loss": 1.0}, config={"x": 1.0},
                           metrics_dataframe=rows, error=None)
    failed = SimpleNamespace(metrics={"trial_id": "t_2"}, config={"x": 2.0}, metrics_dataframe=None,
                             error=RuntimeError("boom"), path=str(tmp_path / "trial_t_2"))
    record.started_trial("t_3", {"x": 3.0}, 2)  # ended by a callback, but its last epoch was never recorded
    record.add_result("t_3", {"x": 3.0}, {"epoch": 1, "loss": 2.0, "planned_epochs": 2})
    record.ended_trial("t_3", {"x": 3.0}, max_epochs=2)
    assert record.trials["t_3"].status == "stopped"
    late = SimpleNamespace(metrics={"trial_id": "t_3", "epoch": 2, "loss": 1.5}, config={"x": 3.0},
                           metrics_dataframe=pd.DataFrame([{"epoch": e, "loss": 2.5 - e / 2, "planned_epochs": 2}
                                                           for e in (1, 2)]),
                           error=None)
    record.reconcile([done, failed, late], max_epochs=3)
    assert record.trials["t_3"].status == "finished" and record.trials["t_3"].epochs == 2
    assert record.trials["t_1"].status == "finished" and record.trials["t_1"].epochs == 3
    assert [h["epoch"] for h in record.trials["t_1"].history] == [1, 2, 3]
    assert record.trials["t_1"].best["loss"] == 1.0
    assert record.trials["t_2"].status == "errored" and "boom" in record.trials["t_2"].error
    assert record.trials["t_2"].error_file == "trial_t_2/error.txt"


def test_a_trial_the_record_saw_only_after_a_resume_gets_its_earlier_epochs_back(tmp_path):
    """A trial that started after summary.json's last write before `kill -9` resumes from its checkpoint: the
    resumed driver sees its epochs 7 and 8 only. Ray's own results hold all eight: the end of the run
    puts epochs 1 to 6 back into its history (and its best, when an early epoch was better)."""
    from types import SimpleNamespace

    import pandas as pd

    from tunerd.objectives import Goal
    from tunerd.results import ExperimentRecord

    record = ExperimentRecord(tmp_path, name="x", goal=Goal.single("loss", "min"), trial_count=1)
    record.started_trial("t_1", {"x": 1.0}, 0)
    for epoch in (7, 8):
        record.add_result("t_1", {"x": 1.0}, {"epoch": epoch, "loss": 1.0 + epoch / 10, "planned_epochs": 8})
    record.ended_trial("t_1", {"x": 1.0}, max_epochs=8)
    assert [h["epoch"] for h in record.trials["t_1"].history] == [7, 8]
    losses = {e: 1.0 + abs(e - 3) / 10 for e in range(1, 9)}  # best at epoch 3
    frame = pd.DataFrame([{"epoch": e, "loss": losses[e], "planned_epochs": 8, "trial_id": "t_1",
                           "config/x": 1.0} for e in range(1, 9)])
    result = SimpleNamespace(metrics={"trial_id": "t_1", "epoch": 8, "loss": losses[8]}, config={"x": 1.0},
                             metrics_dataframe=frame, error=None)
    record.reconcile([result], max_epochs=8)
    trial = record.trials["t_1"]
    assert [h["epoch"] for h in trial.history] == list(range(1, 9))
    assert trial.status == "finished" and trial.best["epoch"] == 3 and trial.best["loss"] == losses[3]


def interrupted_after_two_then_resumed(tmp_path: Path, spec: str) -> tuple[dict, dict, Any]:
    """Launch `spec` (the experiment `steady`), Ctrl-C it once two trials have finished, resume it; the
    summary before and after the resume, and the Optuna study the searcher saved last."""
    import cloudpickle

    storage = tmp_path / "r"
    (tmp_path / "steady.yaml").write_text(spec)
    driver = tunerd("launch", str(tmp_path / "steady.yaml"), "--storage", str(storage), "--quiet")
    try:
        wait_for(storage, lambda trials: sum(t["status"] == "finished" for t in trials) >= 2)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=90)
    finally:
        driver.kill()
    assert driver.returncode == 130, out + err
    before = summary_of(storage)
    done = resume(storage)
    assert done.returncode == 0, done.stdout + done.stderr
    [state] = sorted((storage / "steady").glob("searcher-state-*.pkl"))[-1:]
    return before, summary_of(storage), cloudpickle.loads(state.read_bytes())["_ot_study"]


def test_an_optuna_search_resumes_from_its_saved_study(tmp_path):
    """Optuna's samplers keep their study in the searcher state Ray Tune saves with the experiment: after
    Ctrl-C and `tunerd resume`, the study goes on (the trials before the interruption are in it, no trial is
    run twice) and the experiment ends with its trial count."""
    before, after, study = interrupted_after_two_then_resumed(
        tmp_path, SPEC.replace("{x: {grid: [0.0, 1.0, 2.0, 3.0]}, epochs: 8, sleep: 0.4}",
                               "{x: {uniform: [0.0, 3.0]}, epochs: 4, sleep: 0.3}")
        .replace("algorithm: grid, max_concurrent: 2", "algorithm: tpe, num_samples: 5, max_concurrent: 2")
        .replace("max_epochs: 8", "max_epochs: 4"))
    trials = after["trials"]
    assert after["state"] == "finished" and len(trials) == 5 and all(t["status"] == "finished" for t in trials)
    assert len({t["config"]["x"] for t in trials}) == 5
    for old in before["trials"]:
        if old["status"] == "finished":
            assert next(t for t in trials if t["trial_id"] == old["trial_id"])["ended"] == old["ended"]
    assert sorted(t.value for t in study.trials if t.state.name == "COMPLETE") == \
        pytest.approx(sorted(t["best"]["loss"] for t in trials))


def test_a_multi_objective_search_resumes_with_its_study_and_its_front(tmp_path):
    """NSGA-II over two objectives, interrupted and resumed: the sampler (whose lock Optuna cannot pickle
    itself) and the multi-objective study come back, no trial runs twice, and the front is recorded."""
    _, after, study = interrupted_after_two_then_resumed(
        tmp_path, SPEC.replace("metric: loss\nmode: min\n", "objectives:\n  - {metric: loss, mode: min}\n"
                                                            "  - {metric: x, mode: min}\n")
        .replace("{x: {grid: [0.0, 1.0, 2.0, 3.0]}, epochs: 8, sleep: 0.4}",
                 "{x: {uniform: [0.0, 3.0]}, epochs: 4, sleep: 0.3}")
        .replace("algorithm: grid, max_concurrent: 2", "algorithm: nsga2, population_size: 4, num_samples: 5, "
                                                       "max_concurrent: 2")
        .replace("max_epochs: 8", "max_epochs: 4"))
    trials = after["trials"]
    assert after["state"] == "finished" and len(trials) == 5 and all(t["status"] == "finished" for t in trials)
    assert len({t["config"]["x"] for t in trials}) == 5 and after["pareto"]
    assert len(study.directions) == 2
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 5


def test_two_launches_of_one_name_one_runs_the_other_exits_2_at_once(tmp_path):
    """The experiment's lock: the second `launch` (or a `resume` meanwhile) exits 2 before starting Ray,
    naming who holds it; a lock file a dead process left behind does not block (the kernel released it)."""
    storage = tmp_path / "r"
    storage.mkdir()
    (storage / ".steady.lock").write_text("pid 999999 on a-dead-host\n")  # stale: nobody holds the flock
    (tmp_path / "steady.yaml").write_text(SPEC.replace("[0.0, 1.0, 2.0, 3.0]", "[0.0, 1.0]")
                                          .replace("sleep: 0.4", "sleep: 1.0"))
    first = tunerd("launch", str(tmp_path / "steady.yaml"), "--storage", str(storage), "--quiet")
    try:
        wait_for(storage, lambda trials: any(t["epochs"] >= 1 for t in trials))
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(tmp_path / "steady.yaml"),
                                 "--storage", str(storage), "--overwrite"], cwd=REPO, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        assert "experiment 'steady' is in use: pid" in second.stderr and f"pid {first.pid} on" in second.stderr
        assert time.monotonic() - started < 15  # refused before Ray starts
        assert summary_of(storage)["driver"]["pid"] == first.pid  # the first run's record untouched
        out, err = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, out + err
    assert summary_of(storage)["state"] == "finished"
