"""Safe defaults: the embedded Ray is reachable from this machine only and keeps token authentication on,
the token never reaches the output or the files, names stay inside the storage, and nothing a file names
is unpickled or evaluated (the only code a file can name is `trainable: module:function`)."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from tests.conftest import REPO

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def test_the_embedded_ray_listens_on_the_loopback_address_only(ray_session):
    import psutil

    from tunerd.session import embedded_ray_processes

    pids = {pid for pid, _ in embedded_ray_processes()["processes"]} | {os.getpid()}
    listening = [c for c in psutil.net_connections(kind="inet")
                 if c.status == psutil.CONN_LISTEN and c.pid in pids]
    names = {psutil.Process(c.pid).name() for c in listening}
    assert {"gcs_server", "raylet"} <= names, names  # Ray's servers were found: the check below means something
    assert {c.laddr.ip for c in listening} <= LOOPBACK, [(psutil.Process(c.pid).name(), c.laddr) for c in listening]


def test_the_embedded_ray_refuses_a_client_without_its_token(ray_session):
    gcs = ray_session.get_runtime_context().gcs_address
    probe = textwrap.dedent(f"""\
        from ray._raylet import GcsClient
        print("nodes", len(GcsClient(address={gcs!r}).get_all_node_info(timeout=10)))
        """)

    def connect(mode: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", probe], env={**os.environ, "RAY_AUTH_MODE": mode},
                              capture_output=True, text=True, timeout=120)

    refused = connect("disabled")
    assert refused.returncode != 0 and "Authentication token is missing or incorrect" in refused.stderr
    allowed = connect("token")  # the same client with the token (~/.ray/auth_token): the probe itself works
    assert allowed.returncode == 0 and "nodes 1" in allowed.stdout, allowed.stderr


def test_the_token_is_never_printed_or_written_and_auth_stays_on(write_spec, tmp_path):
    """A user who exported RAY_AUTH_MODE=disabled still gets an embedded Ray with authentication on, and
    the token Ray uses (here from RAY_AUTH_TOKEN) shows up nowhere tunerd writes or prints."""
    token = secrets.token_hex(16)
    path = write_spec("""\
        name: secure
        trainable: tests.fixtures.toy:auth_mode
        metric: token_auth
        mode: max
        space: {x: {choice: [1, 2]}}
        search: {algorithm: grid}
        """)
    storage = tmp_path / "results"
    env = {**os.environ, "RAY_AUTH_TOKEN": token, "RAY_AUTH_MODE": "disabled", "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", "tunerd.cli"]
    launched = subprocess.run([*run, "launch", str(path), "--storage", str(storage)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    assert "RAY_AUTH_MODE=disabled ignored: tunerd's embedded Ray keeps token authentication on" in launched.stderr
    summary = json.loads((storage / "secure" / "summary.json").read_text())
    assert [t["last"]["token_auth"] for t in summary["trials"]] == [1.0, 1.0]  # each trial ran with auth on
    shown = subprocess.run([*run, "show", "secure", "--json", "--storage", str(storage)], env=env,
                           capture_output=True, text=True, timeout=120)
    printed = launched.stdout + launched.stderr + shown.stdout + shown.stderr
    assert token not in printed
    written = [p for p in storage.rglob("*") if p.is_file()]
    assert len(written) > 10  # summary, spec, leaderboard, Tune's state, trial results and event files
    assert [p for p in written if token.encode() in p.read_bytes()] == []


@pytest.mark.parametrize("option", [["--name", "../escape"], ["--name", "a/b"], ["--set", "name=.."],
                                    ["--set", "name=/etc"], ["--name", "x\x1b[2J"]])
def test_a_name_can_never_leave_the_storage_folder(option, write_spec, tmp_path):
    from click.testing import CliRunner

    from tunerd.cli import main as cli

    path = write_spec("""\
        name: fine
        trainable: tests.fixtures.toy:quadratic
        metric: loss
        mode: min
        space: {x: {uniform: [0, 4]}}
        """)
    storage = tmp_path / "deep" / "results"
    result = CliRunner().invoke(cli, ["launch", str(path), "--storage", str(storage), *option])
    assert result.exit_code == 2, result.output
    assert "name" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing written, in or beside it


def test_a_pickled_checkpoint_named_by_init_from_is_refused_and_never_run(tmp_path):
    """`init_from` names weights to start from; a file that would run code when unpickled is refused."""
    from trainables.transfer import read_source

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    source = tmp_path / "evil"
    source.mkdir()
    (source / "model.json").write_text(json.dumps({"trainable": "mlp", "config": {}}))
    torch.save({"weight": Payload()}, source / "model.pt")
    with pytest.raises(Exception, match="(?i)weights only|unpickl"):
        read_source(source)
    assert not marker.exists()


def test_a_data_file_holding_pickled_objects_is_refused(tmp_path):
    from trainables.data.spec import DataSpec
    from trainables.data.user import load_user_data

    path = tmp_path / "objects.npz"
    np.savez(path, x=np.array([[1.0, 2.0]] * 4), y=np.array([{"a": 1}] * 4, dtype=object))
    with pytest.raises(Exception, match="pickle"):
        load_user_data(DataSpec(path=str(path)))
