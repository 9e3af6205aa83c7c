"""`tunerd status` and `tunerd show`: read from disk, a diagnosis per trial, JSON, and the plot."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tunerd import report
from tunerd.cli import main
from tunerd.summary import ExperimentState, Summary, TrialRecord


def epoch(n, train_loss, val_loss, train_accuracy, val_accuracy):
    return {"epoch": n, "train_loss": train_loss, "val_loss": val_loss, "train_accuracy": train_accuracy,
            "val_accuracy": val_accuracy, "generalization_gap": train_accuracy - val_accuracy}


OVERFITTING = [epoch(1, 1.0, 0.9, 0.70, 0.68), epoch(2, 0.5, 0.6, 0.85, 0.80), epoch(3, 0.2, 0.7, 0.95, 0.80),
               epoch(4, 0.05, 0.9, 0.99, 0.78)]
HEALTHY = [epoch(1, 1.0, 0.9, 0.70, 0.68), epoch(2, 0.5, 0.6, 0.85, 0.82), epoch(3, 0.3, 0.5, 0.90, 0.86)]
UNDERFITTING = [epoch(1, 2.2, 2.2, 0.20, 0.21), epoch(2, 2.1, 2.1, 0.25, 0.24), epoch(3, 2.0, 2.0, 0.31, 0.30)]


def trial(status, history, **extra):
    return TrialRecord.from_json({"trial_id": "t", "config": {}, "status": status, "epochs": len(history),
                                  "history": history, "last": history[-1] if history else {}, **extra})


@pytest.mark.parametrize("case, expected", [
    (trial("finished", OVERFITTING), ["overfitting: val loss rose from 0.6000 (epoch 2) to 0.9000 (epoch 4)"]),
    (trial("finished", HEALTHY), []),
    (trial("finished", UNDERFITTING), ["underfitting: train accuracy only 0.310 after 3 epochs"]),
    (trial("stopped", HEALTHY, planned_epochs=9), ["stopped early by ASHA at epoch 3 of 9"]),
    (trial("stopped", HEALTHY[:2] + [{**HEALTHY[2], "early_stopped": True}]),
     ["ended itself at epoch 3: no improvement for early_stopping_patience epochs"]),
    (trial("diverged", HEALTHY[:1]), ["diverged: a non-finite loss at epoch 1"]),
    (trial("errored", [], error="ValueError: bad x\n  more lines"), ["errored: ValueError: bad x"]),
])
def test_each_kind_of_trial_gets_its_diagnosis(case, expected):
    found = report.diagnose(case, scheduler="asha")
    assert len(found) == len(expected)
    for line, start in zip(found, expected):
        assert line.startswith(start), line


def test_a_running_experiment_whose_driver_is_gone_is_interrupted():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    def summary(state: str, driver: dict | None) -> Summary:
        return Summary(name="x", metric="loss", mode="min", trial_count=1, state=ExperimentState(state),
                       driver=driver)

    alive = report.driver_identity()
    assert report.effective_state(summary("running", alive)) == "running"  # this very process: alive
    assert report.effective_state(summary("running", {**alive, "pid": gone.pid})) == "interrupted"
    assert report.effective_state(summary("finished", None)) == "finished"


ASHA = """\
name: {name}
trainable: tests.fixtures.toy:quadratic
metric: loss
mode: min
seed: 0
space: {{x: {{uniform: [-10, 10]}}, offset: 0.25, lr: {{loguniform: [1.0e-3, 1.0e-1]}}, epochs: 9}}
search: {{algorithm: random, num_samples: 6}}
scheduler: {{name: asha, grace_period: 1, reduction_factor: 3}}
stop: {{max_epochs: 9}}
"""


@pytest.fixture(scope="module")
def finished(ray_session, tmp_path_factory):
    """A real ASHA experiment on disk (some trials stopped early), and its storage."""
    from tests.conftest import launch_from_repo

    root = tmp_path_factory.mktemp("report")
    (root / "asha.yaml").write_text(ASHA.format(name="asha"))
    launch_from_repo(root / "asha.yaml", root / "results")
    return root / "results"


def test_status_has_one_line_per_experiment(finished):
    done = CliRunner().invoke(main, ["status", "--storage", str(finished)])
    assert done.exit_code == 0, done.output
    header, line = done.output.splitlines()
    assert header.split()[:4] == ["experiment", "state", "trials", "best"]
    assert line.split()[:5] == ["asha", "finished", "6/6", "loss", line.split()[4]]
    rows = [json.loads(row) for row in CliRunner().invoke(
        main, ["status", "--storage", str(finished), "--json"]).output.splitlines()]
    assert rows[0]["name"] == "asha" and rows[0]["done"] == rows[0]["total"] == 6 and rows[0]["duration_s"] >= 0


def test_show_prints_the_leaderboard_the_winner_and_why_trials_stopped(finished):
    summary = json.loads((finished / "asha" / "summary.json").read_text())
    done = CliRunner().invoke(main, ["show", "asha", "--storage", str(finished), "--top", "3"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    table = lines[lines.index(next(line for line in lines if line.strip().startswith("rank"))) + 1:][:3]
    assert [row.split()[1] for row in table] == [t["trial_id"] for t in sorted(
        summary["trials"], key=lambda t: t["best"]["loss"])][:3]
    assert "searched config" in done.output and "x=" in done.output and "offset=" not in done.output
    assert f"best: trial {summary['best']['trial_id']}" in done.output
    stopped = [t for t in summary["trials"] if t["status"] == "stopped"]
    assert stopped  # ASHA stopped some: each is explained with its epoch
    for t in stopped:
        assert f"trial {t['trial_id']}: stopped early by ASHA at epoch {t['epochs']}" in done.output


def test_show_json_and_plot(finished, tmp_path):
    plot = tmp_path / "curves.png"
    done = CliRunner().invoke(main, ["show", "asha", "--storage", str(finished), "--json", "--plot", str(plot)])
    assert done.exit_code == 0, done.output
    shown = json.loads(done.output)
    assert {"name", "state", "metric", "mode", "best", "test", "leaderboard", "trials", "counts", "plot"} <= set(shown)
    assert len(shown["trials"]) == 6 and all("diagnosis" in t and "config" in t for t in shown["trials"])
    assert shown["trials"][0]["trial_id"] == shown["best"]["trial_id"] and shown["trials"][0]["rank"] == 1
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_unknown_experiment_is_a_clear_usage_error(finished):
    done = CliRunner().invoke(main, ["show", "ashaa", "--storage", str(finished)])
    assert done.exit_code == 2
    assert "no experiment 'ashaa' in storage" in done.output and "(did you mean 'asha'?)" in done.output


def test_the_plot_names_trials_as_show_does_and_its_log_labels_do_not_overlap(finished):
    import matplotlib.pyplot as plt

    from tunerd.plots import _log_axis, draw

    shown = report.show(str(finished), "asha")
    figure = draw(shown, report.read_spec(str(finished), "asha"))
    try:
        legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
        assert legend[0] == f"best: trial {shown.summary.best.trial_id}"  # the id `show` prints, whole
        lr_axis = next(axes for axes in figure.axes if axes.get_xlabel() == "lr")
        figure.canvas.draw()
        assert lr_axis.get_xscale() == "log" and not [t for t in lr_axis.get_xminorticklabels() if t.get_text()]
    finally:
        plt.close(figure)
    figure, axes = plt.subplots(figsize=(4, 3))
    try:  # less than two decades: four labels spread in log space, none of them on top of another
        _log_axis(axes, 1e-3, 5e-3)
        axes.scatter([1e-3, 2e-3, 5e-3], [0.1, 0.3, 0.2])
        figure.canvas.draw()
        labels = [t for t in axes.get_xticklabels() if t.get_text()]
        assert [t.get_text() for t in labels] == ["0.001", "0.0017", "0.0029", "0.005"]
        boxes = [t.get_window_extent() for t in labels]
        assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:]))
        assert not [t for t in axes.get_xminorticklabels() if t.get_text()]
    finally:
        plt.close(figure)
