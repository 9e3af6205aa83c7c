"""Ray Jobs API: `launch --submit`, `jobs`, `logs`, `stop` against a real head of our own.

The head runs with token authentication, its token in a file of this module's (RAY_AUTH_TOKEN_PATH) and a
HOME of its own, so a user's ~/.ray/auth_token is neither read nor overwritten; every CLI call is a real
process, and none of their output may hold the token.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from cluster.local_cluster import LocalCluster
from tests.conftest import free_port
from tunerd import jobs
from tunerd.cli import main

TOY = '''\
import time
from ray import tune

def train(config):
    for epoch in range(1, config["epochs"] + 1):
        time.sleep(config.get("pause", 0))
        tune.report({"loss": (config["x"] - 1) ** 2 + 1 / epoch, "epoch": epoch})
'''
SPEC = """\
name: toyjob
trainable: toyjob_module:train
metric: loss
mode: min
space: {x: {uniform: [-2, 2]}, epochs: 2}
search: {algorithm: random, num_samples: 2}
scheduler: {name: fifo}
stop: {max_epochs: 2}
failures: {max_retries: 0}
"""
SCRUBBED = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE",
            "TUNERD_STORAGE")



class Head:
    """What the tests need of the cluster: its job server URL, its token, and the environment to reach it."""

    def __init__(self, url: str, token: str, env: dict[str, str]) -> None:
        self.url, self.token, self.env = url, token, env

    def cli(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "tunerd.cli", *args], cwd=cwd, env=env or self.env,
                              capture_output=True, text=True, timeout=timeout)
        assert self.token not in done.stdout + done.stderr, "the token was printed"
        assert "Traceback" not in done.stderr, done.stderr
        return done


@pytest.fixture(scope="module")
def head():
    """A head with the dashboard (the job server) on 127.0.0.1 and token authentication, its own HOME and
    token file; stopping it stops exactly what it started."""
    root = Path(tempfile.mkdtemp(prefix="rj", dir="/tmp"))
    (root / "home").mkdir()
    token = secrets.token_hex(32)
    (root / "token").write_text(token)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(HOME=str(root / "home"), RAY_AUTH_TOKEN_PATH=str(root / "token"))
    try:
        with LocalCluster(workers=0, head_cpus=2, dashboard=True, fast_failure_detection=False,
                          environment={**env, "RAY_AUTH_MODE": "token"}) as cluster:
            assert cluster.dashboard_url is not None
            yield Head(cluster.dashboard_url, token, env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    """The folder a user launches from: the experiment file and the trainable's module, nothing else."""
    folder = tmp_path_factory.mktemp("user")
    (folder / "toyjob_module.py").write_text(TOY)
    (folder / "space.yaml").write_text(SPEC)
    return folder


@pytest.fixture(scope="module")
def finished_job(head, user_folder, tmp_path_factory):
    """One experiment submitted with --follow, run to the end on the head."""
    storage = tmp_path_factory.mktemp("results")
    done = head.cli("launch", "space.yaml", "--submit", head.url, "--storage", str(storage), "--follow",
                    "--set", "search.num_samples=2", cwd=user_folder)
    job_id = next(line.rsplit(" ", 1)[1] for line in done.stdout.splitlines() if " as job " in line)
    return job_id, done, storage


def test_submit_follow_runs_to_succeeded_with_the_module_shipped(finished_job):
    job_id, done, storage = finished_job
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ships: space.yaml, toyjob_module.py" in done.stdout
    assert f" -m tunerd.cli launch space.yaml --address auto --storage {storage} --set search.num_samples=2" \
        in done.stdout
    assert f"tunerd logs {job_id} --address " in done.stdout and f"tunerd stop {job_id} --address " in done.stdout
    assert done.stdout.count("best config:") == 1  # the job's own output, streamed once
    assert f"job {job_id}: SUCCEEDED" in done.stdout
    summary = json.loads((storage / "toyjob" / "summary.json").read_text())
    assert summary["state"] == "finished" and len(summary["trials"]) == 2


def test_logs_returns_the_job_output(head, finished_job):
    job_id, _, storage = finished_job
    done = head.cli("logs", job_id, "--address", head.url)
    assert done.returncode == 0, done.stderr
    assert "tunerd: toyjob: 2 trials of toyjob_module:train" in done.stdout
    assert f"results: {storage / 'toyjob'}" in done.stdout


def test_jobs_lists_it_and_address_comes_from_the_environment(head, finished_job):
    job_id, _, _ = finished_job
    # Ray's client would let RAY_ADDRESS override --address; tunerd's --address wins
    done = head.cli("jobs", "--address", head.url, env={**head.env, "RAY_ADDRESS": "http://127.0.0.1:1"})
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith(job_id))
    assert row.split()[1] == "SUCCEEDED" and row.split()[-1] == "toyjob"
    from_env = head.cli("jobs", env={**head.env, "RAY_API_SERVER_ADDRESS": head.url})
    assert from_env.returncode == 0 and job_id in from_env.stdout


def test_stop_ends_a_long_job_stopped_and_its_experiment_interrupted(head, user_folder, tmp_path):
    submitted = head.cli("launch", "space.yaml", "--submit", head.url, "--storage", str(tmp_path), "--name", "long",
                         "--set", "space.epochs=500", "--set", "space.pause=0.2", "--set", "stop.max_epochs=500",
                         cwd=user_folder)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    job_id = submitted.stdout.split(" as job ")[1].split()[0]
    summary = tmp_path / "long" / "summary.json"
    deadline = time.monotonic() + 90
    while not (summary.exists() and json.loads(summary.read_text())["counts"]["running"]):
        assert time.monotonic() < deadline, head.cli("logs", job_id, "--address", head.url).stdout
        time.sleep(1)
    stopped = head.cli("stop", job_id, "--address", head.url)
    assert stopped.returncode == 0 and f"job {job_id}: STOPPED" in stopped.stdout, stopped.stdout + stopped.stderr
    assert json.loads(summary.read_text())["state"] == "interrupted"  # SIGINT: tunerd's Ctrl-C, state saved
    followed = head.cli("logs", job_id, "--address", head.url, "--follow")
    assert followed.returncode == 130 and "STOPPED" in followed.stderr
    again = head.cli("stop", job_id, "--address", head.url)
    assert again.returncode == 0 and "had already ended: STOPPED" in again.stdout


def test_bad_address_unknown_job_and_token_errors_are_one_line(head):
    def one_line_error(done: subprocess.CompletedProcess[str], code: int, text: str) -> None:
        assert done.returncode == code, done.stdout + done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ") and text in done.stderr

    one_line_error(head.cli("jobs", "--address", f"http://127.0.0.1:{free_port()}"), 1, "cannot reach")
    one_line_error(head.cli("jobs"), 2, "no job server address")
    one_line_error(head.cli("jobs", "--address", "127.0.0.1:6379"), 2, "expected the job server's URL")
    one_line_error(head.cli("logs", "raysubmit_nope", "--address", head.url), 2, "no job 'raysubmit_nope'")
    one_line_error(head.cli("stop", "raysubmit_nope", "--address", head.url), 2, "no job 'raysubmit_nope'")
    no_token = {k: v for k, v in head.env.items() if k != "RAY_AUTH_TOKEN_PATH"}  # HOME has no token either
    one_line_error(head.cli("jobs", "--address", head.url, env=no_token), 1, "no token was sent")
    wrong = {**no_token, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    one_line_error(head.cli("jobs", "--address", head.url, env=wrong), 1, "the token was not accepted")
    as_variable = {**no_token, "RAY_AUTH_TOKEN": head.token}
    assert head.cli("jobs", "--address", head.url, env=as_variable).returncode == 0


# ----------------------------------------------------------------------------------------------------------
# Before anything is sent (no cluster needed)


@pytest.fixture
def in_user_folder(monkeypatch, tmp_path):
    (tmp_path / "toyjob_module.py").write_text(TOY)
    (tmp_path / "space.yaml").write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_dry_run_shows_the_job_and_sends_nothing(in_user_folder):
    result = invoke("launch", "space.yaml", "--submit", "http://127.0.0.1:1", "--dry-run", "--storage", "/srv/r",
                    "--name", "n1", "--set", "space.epochs=3", "--overwrite", "--python", "/opt/py/bin/python")
    assert result.exit_code == 0, result.output
    assert "ships: space.yaml, toyjob_module.py" in result.output
    assert ("runs: /opt/py/bin/python -m tunerd.cli launch space.yaml --address auto --storage /srv/r "
            "--set space.epochs=3 --name n1 --overwrite") in result.output
    assert "results: /srv/r/n1 (on the cluster)" in result.output


def test_submit_checks_before_sending(in_user_folder):
    url = "http://127.0.0.1:1"  # nothing listens: every refusal below comes before any connection
    relative = invoke("launch", "space.yaml", "--submit", url)
    assert relative.exit_code == 2 and "the default storage './tunerd-results' is a relative path" in relative.output
    assert invoke("launch", "space.yaml", "--submit", url, "--storage", "r").exit_code == 2
    assert "--python 'python'" in invoke("launch", "space.yaml", "--submit", url, "--storage", "/r",
                                         "--python", "python").output
    assert invoke("launch", "space.yaml", "--follow").exit_code == 2
    assert invoke("launch", "space.yaml", "--submit", url, "--address", "auto").exit_code == 2
    unreachable = invoke("launch", "space.yaml", "--submit", url, "--storage", "/r")
    assert unreachable.exit_code == 1 and "cannot reach the Ray job server" in unreachable.output


def test_a_bad_file_exits_2_with_the_messages_of_plain_launch(in_user_folder):
    bad = in_user_folder / "bad.yaml"
    bad.write_text(SPEC.replace("{uniform: [-2, 2]}", "{loguniform: [-1, 2]}"))
    submitted = invoke("launch", "bad.yaml", "--submit", "http://127.0.0.1:1", "--storage", "/r")
    plain = invoke("launch", "bad.yaml", "--storage", "/r")
    assert submitted.exit_code == plain.exit_code == 2
    assert submitted.output == plain.output and "bad.yaml:5: space.x.loguniform" in submitted.output


def test_a_package_in_the_folder_is_shipped_whole_but_nothing_else(tmp_path):
    package = tmp_path / "mypkg" / "sub"
    package.mkdir(parents=True)
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "__pycache__").mkdir()
    (tmp_path / "data.npz").write_text("not shipped")
    (tmp_path / "space.yaml").write_text(SPEC)
    experiment = SimpleNamespace(name="e", spec=SimpleNamespace(trainable="mypkg.sub.mod:train"))
    with jobs.prepare(experiment, str(tmp_path / "space.yaml"), ["--address", "auto"], python="/py",
                      cwd=tmp_path) as submission:
        assert submission.shipped == ["space.yaml", "mypkg/"]
        assert sorted(p.relative_to(submission.working_dir).as_posix()
                      for p in submission.working_dir.rglob("*")) == [
            "mypkg", "mypkg/__init__.py", "mypkg/sub", "mypkg/sub/__init__.py", "space.yaml"]
        assert submission.entrypoint == "/py -m tunerd.cli launch space.yaml --address auto"
    assert not submission.working_dir.exists()
    assert jobs.module_source("elsewhere.mod:train", tmp_path) is None
    assert jobs.module_source("mlp", tmp_path) is None


@pytest.mark.parametrize("status, driver_exit_code, expected",
                         [("SUCCEEDED", 0, 0), ("FAILED", 1, 1), ("FAILED", 2, 2), ("FAILED", -9, 1),
                          ("STOPPED", None, 130)])
def test_exit_code_follows_the_job(status, driver_exit_code, expected):
    class Info:
        pass

    info = Info()
    info.status, info.driver_exit_code = status, driver_exit_code
    assert jobs.exit_code(info) == expected


def test_help_names_the_job_commands():
    result = invoke("--help")
    assert all(command in result.output for command in ("jobs", "logs", "stop"))
    assert "--submit URL" in invoke("launch", "--help").output
