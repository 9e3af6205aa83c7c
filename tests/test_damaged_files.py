"""Damaged experiment files: a truncated or garbage `summary.json` or `spec.yaml` gives `status`, `show` and
`resume` one clear error naming the file (exit 2 for that experiment), never a traceback, and `status`
still lists the other experiments."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tunerd.cli import main
from tunerd.objectives import Goal
from tunerd.results import ExperimentRecord
from tunerd.summary import ExperimentState

SPEC = ("name: {name}\ntrainable: tests.fixtures.toy:quadratic\nmetric: loss\nmode: min\n"
        "space: {{x: {{uniform: [0, 1]}}}}\n")


def experiment(storage, name: str, state=ExperimentState.INTERRUPTED):
    record = ExperimentRecord(storage / name, name=name, goal=Goal.single("loss", "min"), trial_count=2)
    (storage / name).mkdir(parents=True)
    record.started_trial("t1", {"x": 0.5}, 0)
    record.add_result("t1", {"x": 0.5}, {"epoch": 1, "loss": 0.25})
    record.state = state
    record.write()
    (storage / name / "spec.yaml").write_text(SPEC.format(name=name))
    return storage / name


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],                # truncated by a crash mid-copy
    lambda text: "\x00\x17garbage{",                    # garbage
    lambda text: json.dumps({"trials": 5, "name": 1}),  # JSON, but not a summary
    lambda text: "[1, 2]",
])
def test_a_damaged_summary_is_named_and_the_others_still_listed(tmp_path, damage):
    good, bad = experiment(tmp_path, "good"), experiment(tmp_path, "bad")
    path = bad / "summary.json"
    path.write_text(damage(path.read_text()))
    listed = run("status", "--storage", str(tmp_path))
    assert listed.exit_code == 0 and listed.exception is None
    lines = listed.stdout.splitlines()
    assert any(line.startswith("good ") and "interrupted" in line for line in lines)
    assert any(line.startswith("bad ") and "damaged" in line for line in lines)
    assert f"error: {path} is damaged" in listed.stderr
    as_json = [json.loads(line) for line in run("status", "--storage", str(tmp_path), "--json").stdout.splitlines()]
    assert {row["name"]: row["state"] for row in as_json} == {"good": "interrupted", "bad": "damaged"}
    for command in (["show", "bad"], ["resume", "bad"], ["export", "bad", "--trial", "t1"]):
        result = run(*command, "--storage", str(tmp_path))
        assert result.exit_code == 2, (command, result.output)
        assert f"{path} is damaged" in result.output and "Traceback" not in result.output
    assert run("show", "good", "--storage", str(tmp_path)).exit_code == 0 and good.exists()


@pytest.mark.parametrize("garbage", ["name: [unclosed\n  - x: {", "- a list\n- not a mapping\n", "\tname: tab"])
def test_a_damaged_spec_is_named_by_show_and_resume(tmp_path, garbage):
    folder = experiment(tmp_path, "bad")
    (folder / "spec.yaml").write_text(garbage)
    shown = run("show", "bad", "--storage", str(tmp_path), "--plot", str(tmp_path / "p.png"))
    assert shown.exit_code == 2 and f"{folder / 'spec.yaml'}" in shown.output and "damaged" in shown.output
    resumed = run("resume", "bad", "--storage", str(tmp_path))
    assert resumed.exit_code == 2 and f"{folder / 'spec.yaml'}" in resumed.output
    assert "Traceback" not in shown.output + resumed.output
    assert json.loads((folder / "summary.json").read_text())["state"] == "interrupted"  # nothing lost


@pytest.mark.parametrize("file, damage", [
    ("experiment_state-2026-12-06_10-00-00.json", lambda data: data[: len(data) // 2]),  # killed mid-copy
    ("searcher-state-2026-12-06_10-00-00.pkl", lambda data: data[:-3]),
    ("search_gen_state-2026-12-06_10-00-00.json", lambda data: b"\x80\x05garbage"),
])
def test_half_written_ray_state_refuses_resume_before_ray_starts(tmp_path, file, damage):
    """Ray Tune copies its saved state into the storage in place: a driver killed during the copy leaves half
    a file, and `Tuner.restore` would silently start a new one-trial run in the old folder (the soak's fourth
    run). `resume` names the file, changes nothing and says how to go on (a warm start from the trials)."""
    import pickle
    from unittest import mock

    folder = experiment(tmp_path, "halved")
    state = {"trial_data": [["{}", "{}"]] * 50, "runner_data": {}, "stats": {}}
    (folder / "experiment_state-2026-12-06_10-00-00.json").write_text(json.dumps(state))
    (folder / "experiment_state-2026-12-06_09-00-00.json").write_text("an older session: not the one Ray reads {")
    for name in ("searcher-state-2026-12-06_10-00-00.pkl", "search_gen_state-2026-12-06_10-00-00.json"):
        (folder / name).write_bytes(pickle.dumps({"counter": 3, "searcher": list(range(100))}))
    target = folder / file
    target.write_bytes(damage(target.read_bytes()))
    before = (folder / "summary.json").read_text()
    with mock.patch("tunerd.runner.ray_session", side_effect=AssertionError("Ray started")):
        result = run("resume", "halved", "--storage", str(tmp_path))
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"{target} is damaged" in result.output
    assert "cannot be resumed" in result.output and "search.warm_start: [halved]" in result.output
    assert (folder / "summary.json").read_text() == before
