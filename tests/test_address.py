"""`launch --address` joins a running Ray cluster (here: a head started by the test, stopped by the test)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cluster.local_cluster import LocalCluster


@pytest.fixture(scope="module")
def ray_head():
    """A head of our own (own ports, own temp dir, 2 CPUs); stopping it stops exactly what it started."""
    with LocalCluster(workers=0, head_cpus=2) as head:
        yield head


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
    address = ray_head.address if how == "gcs" else ray_head.client_address
    done = subprocess.run([sys.executable, "-m", "tunerd.cli", "launch", str(path), "--storage",
                           str(tmp_path / "r"), "--address", address], capture_output=True, text=True,
                          timeout=180, env=ray_head.driver_env)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "r" / "joined" / "summary.json").read_text())
    assert summary["state"] == "finished" and len(summary["trials"]) == 2
    assert (tmp_path / "r" / "joined" / "best" / "model.pt").is_file()
    assert f"results: {tmp_path / 'r' / 'joined'}" in done.stdout
