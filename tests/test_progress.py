"""The progress view of `launch`: the live table (epochs, best so far, time left) and `--json-lines`."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import REPO
from tunerd.objectives import Goal
from tunerd.progress import ProgressView
from tunerd.results import ExperimentRecord


def test_the_table_shows_running_trials_the_best_so_far_and_the_time_left(tmp_path):
    record = ExperimentRecord(tmp_path, name="x", goal=Goal.single("val_accuracy", "max"), trial_count=4)
    view = ProgressView(record, quiet=True, max_epochs=10)
    view._start = time.monotonic() - 60  # a minute in
    for index, trial_id in enumerate(["e_00000", "e_00001", "e_00002"]):
        record.started_trial(trial_id, {"lr": 0.1}, index)
    for epoch in range(1, 11):
        record.add_result("e_00000", {"lr": 0.1}, {"epoch": epoch, "val_accuracy": 0.5 + epoch / 100})
    record.ended_trial("e_00000", {"lr": 0.1}, max_epochs=10)
    record.add_result("e_00001", {"lr": 0.2}, {"epoch": 5, "val_accuracy": 0.7, "planned_epochs": 10})
    line = view.status_line()
    assert "running 2  done 1" in line and "pending 1" in line
    assert "best val_accuracy 0.7000 (trial e_00001)" in line
    # 1.5 of 4 trials' work in 60 s: 100 s to go
    assert "~01:40 left" in line, line
    assert view.running_lines() == ["    e_00001  running  epoch 5/10   val_accuracy=0.7000",
                                    "    e_00002  running  epoch 0/10   starting"]


def test_json_lines_gives_scripts_one_event_per_line(tmp_path):
    (tmp_path / "exp.yaml").write_text(
        "name: events\ntrainable: tests.fixtures.toy:quadratic\nmetric: loss\nmode: min\n"
        "space: {x: {grid: [0.0, 1.5, 4.0]}, epochs: 3}\nsearch: {algorithm: grid}\nscheduler: {name: fifo}\n"
        "stop: {max_epochs: 3}\n")
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(tmp_path / "exp.yaml"), "--storage",
                           str(tmp_path / "r"), "--json-lines"], cwd=REPO, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]  # every line is JSON
    kinds = [e["event"] for e in events]
    assert kinds.count("trial_start") == kinds.count("trial_end") == 3 and kinds.count("result") == 9
    assert kinds[-1] == "end" and events[-1]["state"] == "finished"
    assert events[-1]["best"]["config"]["x"] == 1.5 and events[-1]["where"] == str(tmp_path / "r" / "events")
    ends = [e for e in events if e["event"] == "trial_end"]
    assert all(e["status"] == "finished" and e["epochs"] == 3 for e in ends)
