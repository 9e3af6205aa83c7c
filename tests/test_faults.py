"""Faults inside trials: a failing configuration is retried, then recorded, and the experiment goes on; a
killed trial process comes back from its checkpoint; a non-finite loss is `diverged`, not an error."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

import tunerd
from tests.conftest import REPO
from tunerd.cli import main

PICKY = """\
    name: picky
    trainable: tests.fixtures.toy:picky
    metric: loss
    mode: min
    space:
      x: {{grid: [1, 2, 4, 5]}}
      attempts: "{attempts}"
      epochs: 3
    search: {{algorithm: grid}}
    scheduler: {{name: fifo}}
    stop: {{max_epochs: 3}}
    failures: {{max_retries: 2}}
    """


def test_a_failing_configuration_is_retried_then_recorded_and_the_best_of_the_rest_wins(
        ray_session, in_repo, write_spec, tmp_path):
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    path = write_spec(PICKY.format(attempts=attempts))
    result = CliRunner().invoke(main, ["launch", str(path), "--storage", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "picky" / "summary.json").read_text())
    by_x = {t["config"]["x"]: t for t in summary["trials"]}
    assert summary["state"] == "finished"
    for x in (4, 5):  # the first attempt and max_retries (2) more, then recorded with its message
        assert (attempts / str(x)).read_text().count("attempt") == 3
        assert by_x[x]["status"] == "errored" and by_x[x]["error"] == f"ValueError: x too large: {x}"
    for x in (1, 2):
        assert (attempts / str(x)).read_text().count("attempt") == 1
        assert by_x[x]["status"] == "finished" and by_x[x]["epochs"] == 3
    assert summary["best"]["config"]["x"] == 2
    assert "trials: 2 finished, 2 errored" in result.output
    assert "errored: trial" in result.output and "ValueError: x too large: 4" in result.output
    # one line per errored trial, naming the file with its full traceback
    traceback = tmp_path / "r" / "picky" / by_x[4]["error_file"]
    assert f"ValueError: x too large: 4 (traceback: {traceback})" in result.output
    assert 'toy.py", line' in traceback.read_text() and "x too large: 4" in traceback.read_text()


def test_when_every_trial_errors_the_run_exits_1_with_one_clear_line(write_spec, tmp_path):
    """A real `tunerd launch` process: its stderr is that one line, not Ray's tracebacks of each trial."""
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    path = write_spec(PICKY.format(attempts=attempts).replace("[1, 2, 4, 5]", "[4, 5]")
                      .replace("max_retries: 2", "max_retries: 0"))
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(path), "--storage", str(tmp_path / "r")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == ("error: the experiment failed: all 2 trials errored; the first error: "
                           "ValueError: x too large: 4\n"), done.stderr
    summary = json.loads((tmp_path / "r" / "picky" / "summary.json").read_text())
    assert summary["state"] == "failed" and [t["status"] for t in summary["trials"]] == ["errored", "errored"]
    for trial in summary["trials"]:
        assert f"(traceback: {tmp_path / 'r' / 'picky' / trial['error_file']})" in done.stdout


@pytest.mark.parametrize("crash", ["raise", "sigkill"])
def test_a_crashed_or_killed_trial_comes_back_from_its_checkpoint(crash, ray_session, in_repo, write_spec, tmp_path):
    """A trial that raises once, or whose process is killed by a signal (an OOM killer), is retried from its
    last checkpoint, not from scratch."""
    marker = tmp_path / "crashed"
    path = write_spec(f"""\
        name: {crash}
        trainable: tests.fixtures.toy:flaky
        metric: loss
        mode: min
        space: {{marker: "{marker}", crash: {crash}}}
        search: {{algorithm: random, num_samples: 1}}
        scheduler: {{name: fifo}}
        stop: {{max_epochs: 5}}
        failures: {{max_retries: 1}}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "r")), quiet=True)
    trial = outcome.summary["trials"][0]
    assert marker.exists() and trial["retries"] == 1  # crashed once, at epoch 3
    assert trial["status"] == "finished" and trial["epochs"] == 5
    assert trial["last"]["start"] == 3  # the retry started after the epoch-2 checkpoint
    assert [h["epoch"] for h in trial["history"]] == [1, 2, 3, 4, 5]


def test_a_non_finite_loss_ends_the_trial_as_diverged_not_as_an_error(ray_session, in_repo, write_spec, tmp_path):
    path = write_spec("""\
        name: nan
        trainable: tests.fixtures.toy:blows_up
        metric: loss
        mode: min
        space: {x: {grid: [1, 2, 5]}}
        search: {algorithm: grid}
        scheduler: {name: fifo}
        stop: {max_epochs: 6}
        failures: {max_retries: 2}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "r")), quiet=True)
    by_x = {t["config"]["x"]: t for t in outcome.summary["trials"]}
    assert outcome.state == "finished"
    assert by_x[5]["status"] == "diverged" and by_x[5]["epochs"] == 3  # ended at its first NaN, not retried
    assert by_x[5]["retries"] == 0 and by_x[5].get("error") is None
    assert by_x[1]["status"] == by_x[2]["status"] == "finished"
    assert outcome.summary["best"]["config"]["x"] == 2


def test_fail_fast_stops_an_experiment_whose_first_trials_all_fail_alike(write_spec, tmp_path):
    """A mistake every trial makes stops the run after the first 3 trials' first attempts, not after 12
    trials x 3 attempts: exit 1 with that error and what was tried."""
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    path = write_spec(PICKY.format(attempts=attempts).replace("[1, 2, 4, 5]", "[4, 5, 6, 7, 8, 9, 10, 11, 12, 13]"))
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(path), "--storage", str(tmp_path / "r"),
                           "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.match(r"error: the experiment failed: the first 3 trials all failed before their first report, "
                    r"with ValueError \(failures.fail_fast: 3; 0 turns this off\); the first error: ValueError: x "
                    r"too large: \d+; tried: \{.*\}; \{.*\}; \{.*\}\n$", done.stderr), done.stderr
    tried = sum(path.read_text().count("attempt") for path in attempts.iterdir())
    assert tried <= 12, tried  # the first trials' attempts and what was running meanwhile; 10 x 3 = 30 without it
    summary = json.loads((tmp_path / "r" / "picky" / "summary.json").read_text())
    assert summary["state"] == "failed" and summary["error"].startswith("the first 3 trials all failed")


def test_a_full_disk_mid_run_stops_the_experiment_and_keeps_the_last_good_summary(
        ray_session, in_repo, write_spec, tmp_path, monkeypatch):
    """ENOSPC while tunerd writes its record (injected after a few writes: this machine has no small file
    system to fill): one clear error naming the device's file and how to go on, and summary.json is the
    last version that was written whole."""
    import errno

    import tunerd.results
    from trainables.files import atomic_write

    writes = []
    real = tunerd.results.write_atomic

    def filling_up(path, text):
        if len(writes) >= 3:  # the disk fills half way through the temporary file
            def half_then_full(tmp):
                tmp.write_text(text[: len(text) // 2])
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            atomic_write(path, half_then_full)
        writes.append(text)
        real(path, text)

    monkeypatch.setattr(tunerd.results, "write_atomic", filling_up)
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    path = write_spec(PICKY.format(attempts=attempts).replace("[1, 2, 4, 5]", "[1, 2]"))
    with pytest.raises(tunerd.TunerdError) as failure:
        tunerd.launch(tunerd.load(path, storage=str(tmp_path / "r")), quiet=True)
    message = str(failure.value)
    summary_file = tmp_path / "r" / "picky" / "summary.json"
    assert message.startswith(f"the experiment failed: no space left on the device holding {summary_file} "
                              "(ENOSPC): the experiment stopped; summary.json holds its last good version; "
                              "free some space, then: tunerd resume picky"), message
    assert summary_file.read_text() == writes[-1]  # the last good version, whole
    assert json.loads(summary_file.read_text())["state"] == "running"
    assert not list(summary_file.parent.glob(".summary.json.*.tmp"))  # no half-written temp file left


def test_a_hung_trial_is_killed_and_retried_from_its_checkpoint(ray_session, in_repo, write_spec, tmp_path, caplog):
    path = write_spec(f"""\
        name: hung
        trainable: tests.fixtures.toy:hangs_once
        metric: loss
        mode: min
        space: {{marker: "{tmp_path / 'marker'}"}}
        search: {{algorithm: random, num_samples: 1}}
        scheduler: {{name: fifo}}
        stop: {{max_epochs: 3}}
        failures: {{max_retries: 1, hang_timeout_s: 3}}
        """)
    started = time.monotonic()
    with caplog.at_level("WARNING", logger="tunerd"):
        outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "r")), quiet=True)
    assert outcome.state == "finished" and time.monotonic() - started < 60
    [trial] = outcome.summary["trials"]
    assert trial["status"] == "finished" and trial["epochs"] == 3 and trial["retries"] == 1
    assert trial["last"]["start"] == 2  # the retry went on from the epoch-1 checkpoint
    assert f"trial {trial['trial_id']}: silent for" in caplog.text and "killed, to be retried" in caplog.text


def test_the_hang_limit_is_the_number_given_or_ten_slowest_epochs_and_at_least_two_minutes():
    from tunerd.hangs import HangWatch, hang_limit

    assert hang_limit(None, 50.0) is None and hang_limit(7.5, 1000.0) == 7.5
    assert hang_limit("auto", 3.0) == 120.0 and hang_limit("auto", 30.0) == 300.0
    clock = [0.0]
    watch = HangWatch("auto", clock=lambda: clock[0])

    class Trial:
        trial_id, status = "t", "RUNNING"
        temporary_state = None  # no actor: nothing to kill, and nothing is counted

    watch.on_trial_start(0, [], Trial())
    watch.on_trial_result(0, [], Trial(), {"time_this_iter_s": 20.0})
    clock[0] = 199.0
    watch.on_step_begin(0, [Trial()])
    assert watch.killed == {}  # 199 s of silence is within 10 x 20 s
