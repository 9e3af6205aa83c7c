"""`storage: s3://...`: trials, checkpoints and tunerd's own files land in the bucket (a local S3 server,
moto), `init_from` finds an experiment there, and a bucket that cannot be written stops the launch early."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

pytest.importorskip("moto")
pyarrow_fs = pytest.importorskip("pyarrow.fs")

FIRST = """\
name: {name}
trainable: mlp
data: {{name: wine}}
space: {{lr: {{choice: [0.01, 0.003]}}, units: 16, epochs: 2}}
search: {{algorithm: grid}}
scheduler: {{name: fifo}}
stop: {{max_epochs: 2}}
"""


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A local S3 endpoint with one bucket; the environment pyarrow (tunerd and Ray's workers) reads it from."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           "TUNERD_CACHE": str(tmp_path_factory.mktemp("cache"))}
    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket="bucket")
    filesystem = pyarrow_fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http",
                                         access_key="testing", secret_key="testing", region="us-east-1")
    yield env, filesystem
    server.stop()


def tunerd(env, *args, cwd):
    return subprocess.run([sys.executable, "-m", "tunerd.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=240)


def files(filesystem, path):
    found = filesystem.get_file_info(pyarrow_fs.FileSelector(path, recursive=True))
    return {info.path[len(path) + 1:] for info in found
            if info.type == pyarrow_fs.FileType.File}


def test_an_experiment_lives_in_the_bucket_and_the_next_one_starts_from_it(s3, tmp_path):
    env, filesystem = s3
    (tmp_path / "first.yaml").write_text(FIRST.format(name="wine-s3"))
    done = tunerd(env, "launch", "first.yaml", "--storage", "s3://bucket/results", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "results: s3://bucket/results/wine-s3" in done.stdout
    stored = files(filesystem, "bucket/results/wine-s3")
    for name in ("spec.yaml", "summary.json", "leaderboard.csv", "best/model.pt", "best/model.json", "tuner.pkl"):
        assert name in stored, sorted(stored)
    trials = {name.split("/")[0] for name in stored if name.startswith("trial_")}
    assert len(trials) == 2
    for trial in trials:  # Ray Tune wrote each trial's results, checkpoints and TensorBoard events there
        assert f"{trial}/result.json" in stored
        assert any(name.startswith(f"{trial}/checkpoint_") for name in stored)
        assert any(name.startswith(f"{trial}/events.out.tfevents") for name in stored), sorted(stored)
    with filesystem.open_input_stream("bucket/results/wine-s3/summary.json") as stream:
        summary = json.loads(stream.read())
    assert summary["state"] == "finished" and len(summary["trials"]) == 2
    assert summary["best"]["checkpoint"].startswith("s3://bucket/results/wine-s3/trial_")
    assert summary["test"]["test_samples"] > 0

    again = tunerd(env, "launch", "first.yaml", "--storage", "s3://bucket/results", cwd=tmp_path)
    assert again.returncode == 2 and "experiment 'wine-s3' already exists in s3://bucket/results" in again.stderr

    (tmp_path / "second.yaml").write_text(FIRST.format(name="wine-s3-transfer").replace(
        "units: 16,", "units: 16, init_from: wine-s3,"))
    done = tunerd(env, "launch", "second.yaml", "--storage", "s3://bucket/results", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    stored = files(filesystem, "bucket/results/wine-s3-transfer")
    trials = sorted({name.split("/")[0] for name in stored if name.startswith("trial_")})
    assert len(trials) == 2
    for trial in trials:  # each trial started from the first experiment's best/, found in the bucket
        with filesystem.open_input_stream(f"bucket/results/wine-s3-transfer/{trial}/result.json") as stream:
            first_report = json.loads(stream.read().decode().splitlines()[0])
        assert first_report["transfer_loaded"] > 0


def test_a_bucket_that_cannot_be_written_stops_the_launch_before_ray(s3, tmp_path):
    env, _ = s3
    (tmp_path / "first.yaml").write_text(FIRST.format(name="nowhere"))
    done = tunerd(env, "launch", "first.yaml", "--storage", "s3://no-such-bucket/results", cwd=tmp_path)
    assert done.returncode == 2
    assert "storage 's3://no-such-bucket/results' cannot be written" in done.stderr
    assert "Traceback" not in done.stderr
