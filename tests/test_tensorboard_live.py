"""TensorBoard while trials run: each running trial's events already hold its HParams (every config value)
and its scalars, and `tunerd tensorboard NAME` serves them (HParams dashboard on)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

from tests.conftest import REPO, free_port
from tests.test_resume import SPEC, summary_of, wait_for


def get_json(url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_hparams_and_scalars_of_a_running_trial_and_the_tensorboard_command(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    storage = tmp_path / "r"
    (tmp_path / "steady.yaml").write_text(SPEC.replace("sleep: 0.4", "sleep: 1.0"))
    driver = subprocess.Popen([sys.executable, "-m", "tunerd.cli", "launch", str(tmp_path / "steady.yaml"),
                               "--storage", str(storage), "--quiet"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    board = None
    try:
        # epoch 3 recorded: the TensorBoard callback, which runs after the record's, has written epoch 2
        wait_for(storage, lambda trials: any(t["status"] == "running" and t["epochs"] >= 3 for t in trials))
        running = next(t for t in summary_of(storage)["trials"] if t["status"] == "running" and t["epochs"] >= 3)
        events = EventAccumulator(str(storage / "steady" / f"trial_{running['trial_id']}"))
        events.Reload()
        content = events.PluginTagToContent("hparams")
        start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
        assert set(start.hparams) == {"x", "epochs", "sleep"}  # every value, constants included
        assert start.hparams["x"].number_value == running["config"]["x"]
        assert "_hparams_/session_end_info" not in content  # still running
        assert len(events.Scalars("loss")) >= 2

        port = free_port()
        board = subprocess.Popen([sys.executable, "-m", "tunerd.cli", "tensorboard", "steady", "--storage",
                                  str(storage), "--port", str(port)], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        runs = get_json(f"http://127.0.0.1:{port}/data/runs")
        assert f"trial_{running['trial_id']}" in runs
        plugins = get_json(f"http://127.0.0.1:{port}/data/plugins_listing")
        assert plugins["hparams"]["enabled"] and plugins["scalars"]["enabled"]
    finally:
        if board is not None:
            board.terminate()
            board.wait(timeout=30)
        driver.send_signal(signal.SIGINT)
        try:
            driver.communicate(timeout=90)
        finally:
            driver.kill()


def test_tensorboard_on_an_unknown_experiment_is_a_clear_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "tensorboard", "nope", "--storage", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "no experiment 'nope' in storage" in done.stderr
