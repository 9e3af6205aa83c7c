"""`launch --address` joins a running Ray cluster (here: a head started by the test, stopped by the test)."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import free_port


@pytest.fixture(scope="module")
def ray_head():
    """A `ray start --head --block` of our own (own port, own temp dir); SIGTERM stops what it started."""
    port, client_port = free_port(), free_port()
    temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray = Path(sys.executable).with_name("ray")
    head = subprocess.Popen([str(ray), "start", "--head", f"--port={port}", f"--ray-client-server-port={client_port}",
                             "--num-cpus=2",
                             f"--temp-dir={temp_dir}", "--include-dashboard=false", "--block"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(Path(temp_dir).glob("session_*/sockets/raylet*")):
        time.sleep(0.5)
    yield {"gcs": f"127.0.0.1:{port}", "client": f"ray://127.0.0.1:{client_port}"}
    head.send_signal(signal.SIGTERM)
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        head.kill()
    shutil.rmtree(temp_dir, ignore_errors=True)


SPEC = """\
        name: joined
        trainable: mlp
        data: {name: wine}
        space: {lr: {choice: [0.01, 0.003]}, epochs: 2}
        search: {algorithm: grid}
        scheduler: {name: fifo}
        stop: {max_epochs: 2}
        """


@pytest.mark.parametrize("how", ["gcs", "client"])
def test_launch_joins_a_running_cluster(ray_head, write_spec, tmp_path, how):
    """HOST:PORT joins as a driver; ray://HOST:PORT runs the driver on the head through Ray Client."""
    path = write_spec(SPEC)
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(path), "--storage",
                           str(tmp_path / "r"), "--address", ray_head[how]], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "r" / "joined" / "summary.json").read_text())
    assert summary["state"] == "finished" and len(summary["trials"]) == 2
    assert (tmp_path / "r" / "joined" / "best" / "model.pt").is_file()
    assert f"results: {tmp_path / 'r' / 'joined'}" in done.stdout
