"""cluster/: the launcher and KubeRay configs checked against Ray's and KubeRay's own schemas, and a real
multi-node Ray cluster on this machine (cluster/local_cluster.py) running `tunerd launch --address`.

The multi-node tests start their own `ray start --block` processes (a head with no CPUs for trials and two
worker nodes, each declaring 1 CPU and 1 GPU), run tunerd in a subprocess (this process may hold the test
session's Ray already), and stop exactly what they started.
"""
from __future__ import annotations

import copy
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from cluster.local_cluster import LocalCluster

REPO = Path(__file__).resolve().parents[1]
RAY_CLUSTER = REPO / "cluster" / "ray-cluster.yaml"
KUBERAY = REPO / "cluster" / "kuberay.yaml"
KUBERAY_CRDS = Path(__file__).parent / "data" / "kuberay_v1_crds_trimmed.yaml"


# --- cluster/ray-cluster.yaml: Ray's cluster launcher ----------------------------------------------------

def ray_launcher_schema() -> dict[str, Any]:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def test_ray_cluster_config_passes_the_checks_of_ray_up():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(RAY_CLUSTER.read_text())
    jsonschema.validate(config, ray_launcher_schema())  # the file as written
    # what `ray up` does before it talks to the cloud: merge the provider's defaults, then validate
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)

    types = prepared["available_node_types"]
    assert types[prepared["head_node_type"]]["resources"]["CPU"] == 0  # no trial on the head
    gpu_types = {name: t for name, t in types.items() if t["resources"].get("GPU", 0) > 0}
    assert {t["resources"]["GPU"] for t in gpu_types.values()} == {1, 4}
    assert all(t["min_workers"] == 0 < t["max_workers"] for t in gpu_types.values())  # autoscaled from zero
    # tunerd reaches every node (file_mounts) and is installed there
    (mount,) = [remote for remote, local in config["file_mounts"].items() if local == "."]
    for commands in (prepared["head_setup_commands"], prepared["worker_setup_commands"]):
        assert any(c.startswith("pip install") and c.endswith(mount) for c in commands), commands
    assert any("download.pytorch.org/whl/cpu" in c for c in prepared["head_setup_commands"])  # no CUDA on the head
    assert any("torch.cuda.is_available()" in c for c in prepared["worker_setup_commands"])


@pytest.mark.parametrize("breakage", [
    lambda c: c.update(availabe_node_types=c.pop("available_node_types")),  # a misspelt key
    lambda c: c["available_node_types"]["gpu-1x"]["resources"].update(GPU=0.5),  # node GPUs are whole
    lambda c: c["available_node_types"]["gpu-1x"].update(min_workers=20),  # more than max_workers
], ids=["misspelt-key", "fractional-gpu", "min-over-max"])
def test_ray_up_checks_would_catch_a_broken_config(breakage):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(RAY_CLUSTER.read_text())
    breakage(config)
    with pytest.raises((jsonschema.ValidationError, ValueError, KeyError)):
        jsonschema.validate(config, ray_launcher_schema())
        validate_config(prepare_config(config))


def test_ray_cli_has_the_commands_the_config_mentions():
    """The config's comments tell users `ray up -y`, `ray attach`, `ray dashboard` and `ray down -y`."""
    from click.testing import CliRunner
    from ray.scripts.scripts import cli

    runner = CliRunner()
    for command, flags in [("up", ["--yes", "--no-config-cache"]), ("attach", []), ("dashboard", []),
                           ("down", ["--yes"])]:
        shown = runner.invoke(cli, [command, "--help"])
        assert shown.exit_code == 0, shown.output
        assert all(flag in shown.output for flag in flags), (command, shown.output)
    assert "-y, --yes" in runner.invoke(cli, ["up", "--help"]).output


# --- cluster/kuberay.yaml: KubeRay v1 -----------------------------------------------------------------------

def crd_json_schema(node: Any) -> Any:
    """A CRD's openAPIV3Schema as JSON Schema, strict the way `kubectl apply` is by default: an unknown
    field is an error wherever properties are listed, unless the CRD keeps unknown fields there."""
    if isinstance(node, list):
        return [crd_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: crd_json_schema(value) for key, value in node.items() if not key.startswith("x-kubernetes-")}
    if "properties" in node and "additionalProperties" not in node and \
            not node.get("x-kubernetes-preserve-unknown-fields"):
        converted["additionalProperties"] = False
    return converted


def kuberay_documents() -> dict[str, dict[str, Any]]:
    documents = [doc for doc in yaml.safe_load_all(KUBERAY.read_text()) if doc]
    by_kind = {doc["kind"]: doc for doc in documents}
    assert len(by_kind) == len(documents), "one document of each kind"
    return by_kind


def kuberay_validator(kind: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(KUBERAY_CRDS.read_text())["crds"][kind]
    schema = crd_json_schema(crd["openAPIV3Schema"])
    schema["properties"]["apiVersion"]["const"] = f"{crd['group']}/{crd['version']}"
    schema["properties"]["kind"]["const"] = kind
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_kuberay_manifests_are_valid_v1_custom_resources():
    documents = kuberay_documents()
    assert set(documents) == {"ConfigMap", "PersistentVolumeClaim", "RayCluster", "RayJob"}
    for kind, document in documents.items():
        assert document["metadata"]["name"], kind  # the API server's own requirement
        if kind in ("RayCluster", "RayJob"):
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in kuberay_validator(kind).iter_errors(document)]
            assert not errors, errors
        else:
            assert document["apiVersion"] == "v1"


@pytest.mark.parametrize("breakage, complaint", [
    (lambda s: s.update(workerGroupSpec=s.pop("workerGroupSpecs")), "Additional properties"),
    (lambda s: s["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}), "is not of type 'string'"),
    (lambda s: s["workerGroupSpecs"][0].pop("groupName"), "'groupName' is a required property"),
    (lambda s: s["autoscalerOptions"].update(upscalingMode="Fast"), "is not one of"),
    (lambda s: s["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["limits"]
     .update({"nvidia.com/gpu": "one"}), "does not match"),
], ids=["unknown-field", "non-string-start-param", "missing-group-name", "bad-enum", "bad-quantity"])
def test_the_kuberay_check_catches_broken_manifests(breakage, complaint):
    cluster = kuberay_documents()["RayCluster"]
    breakage(cluster["spec"])
    messages = [e.message for e in kuberay_validator("RayCluster").iter_errors(cluster)]
    assert any(complaint in m for m in messages), messages


def test_kuberay_cluster_runs_trials_on_autoscaled_gpu_workers_only():
    documents = kuberay_documents()
    cluster, job = documents["RayCluster"]["spec"], documents["RayJob"]["spec"]
    assert job["rayClusterSpec"] == cluster  # the RayJob's own cluster is the same as the long-lived one
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    (gpu_group,) = cluster["workerGroupSpecs"]
    assert gpu_group["minReplicas"] == 0 < gpu_group["maxReplicas"]
    (worker,) = gpu_group["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert job["shutdownAfterJobFinishes"] is True and job["ttlSecondsAfterFinished"] > 0


def test_kuberay_job_runs_tunerd_on_the_experiment_of_the_configmap(tmp_path):
    """The entrypoint is a valid `tunerd launch` of a valid experiment file, mounted where it points."""
    from click.testing import CliRunner

    from tunerd import api
    from tunerd.cli import main

    documents = kuberay_documents()
    head = documents["RayCluster"]["spec"]["headGroupSpec"]["template"]["spec"]
    args = shlex.split(documents["RayJob"]["spec"]["entrypoint"])
    assert args[:2] == ["tunerd", "launch"] and "--shared-storage" in args
    spec_path = Path(args[2])
    (mount,) = [m for m in head["containers"][0]["volumeMounts"] if spec_path.is_relative_to(m["mountPath"])]
    (volume,) = [v for v in head["volumes"] if v["name"] == mount["name"]]
    configmap = documents["ConfigMap"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    text = configmap["data"][str(spec_path.relative_to(mount["mountPath"]))]

    local = tmp_path / "space.yaml"
    local.write_text(text)
    experiment = api.load(local)
    assert experiment.spec.resources.gpu > 0
    (results,) = [m for m in head["containers"][0]["volumeMounts"]
                  if Path(experiment.storage).is_relative_to(m["mountPath"])]
    assert any(v["name"] == results["name"] and "persistentVolumeClaim" in v for v in head["volumes"])
    shown = CliRunner().invoke(main, ["launch", str(local), *args[3:], "--dry-run"])
    assert shown.exit_code == 0, shown.output


# --- a multi-node cluster on this machine ------------------------------------------------------------------

def processes_mentioning(text: str) -> list[int]:
    """Processes whose command line mentions `text` (a cluster's own temp dir: its Ray processes)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if text.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                pass
    return found


@pytest.fixture(scope="module")
def cluster():
    """Head (0 CPUs for trials) + worker0 and worker1 (1 CPU and 1 declared GPU each)."""
    with LocalCluster(workers=2, cpus_per_worker=1, gpus_per_worker=1, head_cpus=0) as started:
        temp_dir = str(started.temp_dir)
        yield started
    deadline = time.monotonic() + 20
    while processes_mentioning(temp_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not processes_mentioning(temp_dir), "processes of the local cluster outlived it"


def tunerd_launch(spec: Path, storage: Path, cluster: LocalCluster, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tunerd.cli", "launch", str(spec), "--storage", str(storage),
                                 "--address", cluster.address, "--shared-storage"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=cluster.driver_env)


def finish(launch: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    try:
        code = launch.wait(timeout=timeout)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.wait()
    assert code == 0, log.read_text(errors="replace")[-4000:]


def reports(folder: Path, trial_id: str) -> list[dict[str, Any]]:
    """Every result the trial reported, in order, restarts included (Ray Tune's result.json)."""
    lines = (folder / f"trial_{trial_id}" / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_concurrent_trials_land_on_different_nodes_each_with_its_gpu(cluster, write_spec, tmp_path):
    nodes = cluster.nodes()
    assert set(nodes) == {"head", "worker0", "worker1"}
    spec = write_spec("""\
        name: spread
        trainable: tests.fixtures.cluster_toy:where
        metric: loss
        mode: min
        space: {x: {grid: [0.0, 1.0]}, epochs: 4, sleep: 0.5}
        search: {algorithm: grid}
        scheduler: {name: fifo}
        stop: {max_epochs: 4}
        resources: {cpu: 1, gpu: 1}
        tensorboard: false
        """)
    log = tmp_path / "launch.log"
    finish(tunerd_launch(spec, tmp_path / "r", cluster, log), log, timeout=180)

    folder = tmp_path / "r" / "spread"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["state"] == "finished"
    trials = summary["trials"]
    assert [t["status"] for t in trials] == ["finished", "finished"]
    placed = {t["last"]["node_name"]: t["last"]["node_id"] for t in trials}
    assert placed == {"worker0": nodes["worker0"], "worker1": nodes["worker1"]}  # one trial per worker node
    for trial in trials:
        assert trial["last"]["gpu_ids"] == "0" and trial["last"]["cuda_visible_devices"] == "0"
    first, second = ([r["t"] for r in reports(folder, t["trial_id"])] for t in trials)
    assert min(first) < max(second) and min(second) < max(first), "the two trials ran at the same time"


def test_a_lost_node_s_trial_resumes_from_its_checkpoint_on_another_node(cluster, write_spec, tmp_path):
    spec = write_spec("""\
        name: node-loss
        trainable: tests.fixtures.cluster_toy:resumable
        metric: loss
        mode: min
        space: {x: {grid: [0.0, 1.0]}, epochs: 8, sleep: 0.75}
        search: {algorithm: grid}
        scheduler: {name: fifo}
        stop: {max_epochs: 8}
        resources: {cpu: 1, gpu: 1}
        failures: {max_retries: 3}
        tensorboard: false
        """)
    folder = tmp_path / "r" / "node-loss"
    log = tmp_path / "launch.log"
    launch = tunerd_launch(spec, tmp_path / "r", cluster, log)
    lost = None
    try:
        deadline = time.monotonic() + 150
        while lost is None and time.monotonic() < deadline and launch.poll() is None:
            time.sleep(0.5)
            try:
                summary = json.loads((folder / "summary.json").read_text())
            except (OSError, ValueError):
                continue
            running = [t for t in summary["trials"] if t["last"]]
            if len(running) == 2 and all(2 <= t["epochs"] <= 5 for t in running):
                lost = running[0]
        assert lost is not None, "two trials never ran together:\n" + log.read_text(errors="replace")[-3000:]
        lost_node = lost["last"]["node_name"]
        cluster.remove_worker(int(lost_node.removeprefix("worker")))  # SIGKILL: the machine is gone
        finish(launch, log, timeout=240)
    finally:
        if launch.poll() is None:
            launch.kill()
            launch.wait()
        if lost is not None:
            cluster.add_worker()  # leave the cluster with two workers, as the other tests expect

    summary = json.loads((folder / "summary.json").read_text())
    assert summary["state"] == "finished"
    assert all(t["status"] == "finished" and t["epochs"] == 8 for t in summary["trials"])
    resumed = next(t for t in summary["trials"] if t["trial_id"] == lost["trial_id"])
    assert resumed["retries"] >= 1
    history = reports(folder, lost["trial_id"])
    before = [r for r in history if r["start"] == 1]
    after = [r for r in history if r["start"] > 1]
    assert {r["node_name"] for r in before} == {lost_node}
    survivor = "worker1" if lost_node == "worker0" else "worker0"
    assert after and {r["node_name"] for r in after} == {survivor}
    # it went on from its last checkpoint: not from epoch 1, and without skipping an epoch
    start = after[0]["start"]
    assert 2 < start <= max(r["epoch"] for r in before) + 1
    assert [r["epoch"] for r in after] == list(range(start, 9))


def test_local_cluster_script_runs_until_ctrl_c_and_stops_what_it_started():
    script = subprocess.Popen([sys.executable, str(REPO / "cluster" / "local_cluster.py"), "up", "--workers", "1",
                               "--gpus-per-worker", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, cwd=REPO)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any(line.startswith("Ctrl-C") for line in lines) and time.monotonic() < deadline:
            line = script.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
        output = "\n".join(lines)
        assert any(line.startswith("address: 127.0.0.1:") for line in lines), output
        assert "2 nodes up" in output, output
        (temp_dir,) = [line.split()[1] for line in lines if line.startswith("logs: ")]
        assert processes_mentioning(temp_dir), "the nodes run"
        script.send_signal(signal.SIGINT)
        rest, _ = script.communicate(timeout=60)
        assert script.returncode == 0, output + rest
    finally:
        if script.poll() is None:
            script.kill()
            script.communicate()
    assert not processes_mentioning(temp_dir), "processes of the script's cluster outlived it"
    assert not Path(temp_dir).exists()

