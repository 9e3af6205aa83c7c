"""The command line: exit codes (SPEC §2), the plan, the final report."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tunerd.cli import main

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
name: cli
trainable: tests.fixtures.toy:quadratic
metric: loss
mode: min
space:
  x: {uniform: [-3, 3]}
  epochs: 2
search: {algorithm: random, num_samples: 2}
stop: {max_epochs: 2}
failures: {max_retries: 0}
"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0 and "launch" in result.output and "validate" in result.output
    assert invoke("launch", "--help").exit_code == 0


def test_validate_prints_the_plan(in_repo, write_spec):
    result = invoke("validate", str(write_spec(GOOD)), "--set", "search.num_samples=5")
    assert result.exit_code == 0, result.output
    assert "algorithm: random" in result.output and "trials: 5" in result.output
    assert "x: uniform[-3, 3]" in result.output and "resources per trial: cpu 1, gpu 0" in result.output


def test_validate_bad_file_exits_2_naming_the_key(write_spec):
    path = write_spec(GOOD.replace("{uniform: [-3, 3]}", "{loguniform: [-1, 0.1]}"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:6: space.x.loguniform: lower bound must be > 0" in result.output


def test_missing_file_and_bad_trainable_exit_2(tmp_path, in_repo, write_spec):
    assert invoke("validate", str(tmp_path / "nope.yaml")).exit_code == 2
    path = write_spec(GOOD.replace("toy:quadratic", "toy:nothing_here"))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 and "has no function 'nothing_here'" in result.output
    assert f"{path}: trainable 'tests.fixtures.toy:nothing_here'" in result.output  # the file and the key


@pytest.mark.parametrize("command", [["status"], ["resume", "x"], ["show", "x"]])
def test_a_storage_no_folder_can_have_exits_2(command):
    result = CliRunner().invoke(main, [*command, "--storage", "~nosuchuser/results"])
    assert result.exit_code == 2 and "--storage: '~nosuchuser/results' is not a usable path" in result.output


def test_dry_run_starts_nothing(in_repo, write_spec, tmp_path):
    result = invoke("launch", str(write_spec(GOOD)), "--dry-run", "--storage", str(tmp_path / "r"))
    assert result.exit_code == 0 and "trials: 2" in result.output
    assert not (tmp_path / "r").exists()


def test_launch_reports_the_best_and_refuses_a_second_run(ray_session, in_repo, write_spec, tmp_path):
    args = ["launch", str(write_spec(GOOD)), "--storage", str(tmp_path / "r")]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "best config:" in result.output and "best loss:" in result.output
    assert f"results: {tmp_path / 'r' / 'cli'}" in result.output
    assert f"tensorboard --logdir {tmp_path / 'r' / 'cli'}" in result.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "already exists" in again.output


def test_launch_where_every_trial_fails_exits_1(ray_session, in_repo, write_spec, tmp_path):
    path = write_spec(GOOD.replace("toy:quadratic", "toy:explode"))
    result = CliRunner().invoke(main, ["launch", str(path), "--storage", str(tmp_path / "r"), "--name", "boom"])
    assert result.exit_code == 1
    assert "errored" in result.output and "ValueError: bad configuration" in result.output


def test_console_script_exits_2_before_ray_starts(write_spec):
    path = write_spec(GOOD.replace("name: cli", "name: ../../etc"))
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(path)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2
    assert "name: must start with a letter or digit" in done.stderr
    assert "Started a local Ray instance" not in done.stderr + done.stdout


def test_ctrl_c_saves_the_state_and_exits_130_and_status_follows_the_run(write_spec, tmp_path):
    import json
    import signal
    import time

    path = write_spec("""\
        name: long
        trainable: mlp
        data: {name: digits}
        space: {lr: {loguniform: [1.0e-3, 1.0e-2]}, epochs: 200}
        search: {algorithm: random, num_samples: 8}
        scheduler: {name: fifo}
        stop: {max_epochs: 200}
        """)
    summary_file = tmp_path / "r" / "long" / "summary.json"
    process = subprocess.Popen([sys.executable, "-m", "tunerd.cli", "launch", str(path), "--storage",
                                str(tmp_path / "r")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # wait until a trial has reported an epoch
            if summary_file.exists() and any(t["epochs"] >= 1 for t in json.loads(summary_file.read_text())["trials"]):
                break
            time.sleep(0.5)
        during = subprocess.run([sys.executable, "-m", "tunerd.cli", "status", "--storage", str(tmp_path / "r")],
                                capture_output=True, text=True, timeout=60)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=90)
    finally:
        process.kill()
    assert process.returncode == 130, out + err
    assert during.stdout.splitlines()[1].split()[:2] == ["long", "running"], during.stdout  # read while it ran
    after = subprocess.run([sys.executable, "-m", "tunerd.cli", "status", "--storage", str(tmp_path / "r")],
                           capture_output=True, text=True, timeout=60)
    assert after.stdout.splitlines()[1].split()[:2] == ["long", "interrupted"], after.stdout
    assert "interrupted: the experiment's state is saved" in err
    summary = json.loads(summary_file.read_text())
    assert summary["state"] == "interrupted" and summary["counts"]["finished"] < 8
    assert (summary_file.parent / "tuner.pkl").exists()


def test_a_module_in_the_current_folder_runs_in_that_folder(tmp_path):
    """The user's `module:function` is imported from where tunerd is started, and trials run there."""
    import json

    (tmp_path / "mytrain.py").write_text(
        "import os\nfrom ray import tune\n\n"
        "def train(config):\n"
        "    here = os.path.exists('marker.txt')\n"
        "    tune.report({'loss': config['x'] ** 2, 'sees_launch_folder': float(here)})\n")
    (tmp_path / "marker.txt").write_text("here")
    (tmp_path / "exp.yaml").write_text(
        "name: local\ntrainable: mytrain:train\nmetric: loss\nmode: min\n"
        "space: {x: {uniform: [-1, 1]}}\nsearch: {algorithm: random, num_samples: 2}\n")
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", "exp.yaml", "--storage", "results"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "results" / "local" / "summary.json").read_text())
    assert [t["last"]["sees_launch_folder"] for t in summary["trials"]] == [1.0, 1.0]


READ_ONLY_PROBE = """
import json, os, sys
from tunerd.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "ray": "ray" in sys.modules, "torch": "torch" in sys.modules}), file=sys.stderr)
"""


def test_read_only_commands_load_neither_ray_nor_torch(tmp_path, monkeypatch):
    """`--help`, `status`, `show`, `jobs` and `validate` of a built-in answer at once (their timing is
    benchmarks/cli_latency.py's): none of them imports Ray or torch. `jobs` lists through the job server's
    REST API, with the cluster's token in the Authorization header."""
    import http.server
    import json
    import threading

    from benchmarks.cli_latency import write_storage

    write_storage(tmp_path / "storage", experiments=1, trials=5, epochs=3)
    seen: list[str | None] = []

    class JobServer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps([{"submission_id": "raysubmit_1", "status": "SUCCEEDED", "start_time": 1_700_000_000_000,
                                "entrypoint": "tunerd launch x.yaml", "metadata": {"tunerd_experiment": "exp0"}}])
            self.send_response(200 if self.path == "/api/jobs/" else 404)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), JobServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {**os.environ, "TUNERD_STORAGE": str(tmp_path / "storage"), "RAY_AUTH_TOKEN": "s3cret"}
    try:
        for args in (["--help"], ["status"], ["show", "exp0"], ["validate", "search_spaces/quickstart.yaml"],
                     ["jobs", "--address", f"http://127.0.0.1:{server.server_port}"]):
            done = subprocess.run([sys.executable, "-c", READ_ONLY_PROBE, *args], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=60)
            probe = json.loads(done.stderr.strip().splitlines()[-1])
            assert probe == {"code": 0, "ray": False, "torch": False}, (args, done.stdout, done.stderr)
            if args[0] == "jobs":
                assert "raysubmit_1  SUCCEEDED" in done.stdout and "exp0" in done.stdout
    finally:
        server.shutdown()
    assert seen == ["Bearer s3cret"]


@pytest.mark.parametrize("flags, message", [
    (["--resume", "--overwrite"], "--resume and --overwrite cannot be used together"),
    (["--follow"], "--follow goes with --submit"),
    (["--python", "/usr/bin/python3"], "--python goes with --submit"),
    (["--submit", "http://127.0.0.1:1", "--address", "auto"], "--address and --submit cannot be used together"),
])
def test_flags_that_do_not_go_together_are_refused_by_the_parser(write_spec, flags, message):
    result = CliRunner().invoke(main, ["launch", str(write_spec(GOOD)), *flags])
    assert result.exit_code == 2 and message in result.output, result.output


def test_a_bad_data_file_exits_2_in_seconds_before_ray_starts(tmp_path):
    """A CSV without its label column used to fail in every trial (40 x 3 attempts, minutes); now `launch`
    reads the file first: one line naming the file, the missing column and the columns present."""
    import time

    (tmp_path / "rows.csv").write_text("a,b,kind\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
    (tmp_path / "exp.yaml").write_text("name: csv\ntrainable: mlp\ndata: {path: rows.csv, label_column: label}\n"
                                       "space: {lr: {loguniform: [1.0e-3, 1.0e-1]}}\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", "exp.yaml", "--storage", "r"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and time.monotonic() - started < 30
    assert done.stderr.strip() == (f"error: exp.yaml:3: data.path: {tmp_path}/rows.csv: has no column 'label' "
                                   "(data.label_column); columns present: a, b, kind")
    assert not (tmp_path / "r").exists()


def test_the_data_kind_must_suit_the_trainable(write_spec):
    result = CliRunner().invoke(main, ["validate", str(write_spec(
        "name: k\ntrainable: cnn\ndata: {name: wine}\nspace: {lr: 0.1}\n"))])
    assert result.exit_code == 2
    assert "trainable: trainable 'cnn' needs image data, but this data set is tabular (use mlp)" in result.output


def test_the_end_of_a_run_prints_4_significant_digits_and_a_report_count_is_an_epoch(ray_session, in_repo,
                                                                                     write_spec, tmp_path):
    import re

    spec = GOOD.replace("toy:quadratic", "toy:no_epoch").replace("{uniform: [-3, 3]}", "{uniform: [0.1, 0.2]}")
    result = invoke("launch", str(write_spec(spec)), "--storage", str(tmp_path / "r"), "--set", "stop.max_epochs=3")
    assert result.exit_code == 0, result.output
    config = next(line for line in result.output.splitlines() if line.startswith("best config:"))
    digits = [re.sub(r"^0\.0*", "", number).replace(".", "") for number in re.findall(r"\d+\.\d+", config)]
    assert digits and all(len(d) <= 4 for d in digits), config
    assert re.search(r"best loss: \d\.\d{3} \(trial \S+, epoch 2\)", result.output), result.output
