"""A multi-node Ray cluster on one machine: a head plus N worker nodes, each its own `ray start --block`.

For trying `tunerd launch --address` against a real multi-node cluster (scheduling across nodes, declared
GPUs, node loss) without a cloud account. Every node is a separate `ray start --block` process with its own
ports, declared CPUs and (optionally) declared GPUs; all share one short temp dir. Stopping sends SIGTERM to
the `ray start` processes this script started (each ends its own raylet, workers and agents), waits, and
SIGKILLs whatever is left of *their* process groups. It never runs `ray stop`, which would stop every Ray
of the machine.

    python cluster/local_cluster.py up --workers 2 --gpus-per-worker 1     # Ctrl-C stops it
    tunerd launch space.yaml --address 127.0.0.1:PORT --shared-storage      # in another terminal

As a module (the tests use it):

    from cluster.local_cluster import LocalCluster
    with LocalCluster(workers=2, gpus_per_worker=1) as cluster:
        ...  # cluster.address; cluster.driver_env; cluster.nodes() -> {"head": node_id, "worker0": ...}
        cluster.remove_worker(1)               # simulate losing a node (SIGKILL of its process group)

Declared GPUs are for scheduling only (`ray.get_gpu_ids()` and CUDA_VISIBLE_DEVICES are set, but there is no
device): tunerd's built-in trainables fall back to the CPU when CUDA is not available. Each worker node's
processes see `LOCAL_CLUSTER_NODE=workerI` in their environment and carry the Ray node label
`local-cluster-node=workerI`, so a trainable or a test can tell the nodes apart.

Ray quirks handled here:
- several raylets on one machine need distinct ports: the dashboard agent's listen port is fixed (52365) by
  default, so every port is chosen free here, and worker ports are random (`--min/max-worker-port=0`);
- Ray's socket paths have a length limit (~107 bytes): the temp dir is `/tmp/lcXXXXXX`, not pytest's long
  `tmp_path`;
- a SIGKILLed `ray start --block` cannot stop its raylet, agents and workers itself: each node runs in a
  session of its own (made here), and its whole process group is killed, so nothing is left behind;
- nodes on one machine share the session folder and number their sockets and logs (raylet.1, ...); started
  together they sometimes failed ("timed out during startup"), so they are started one after the other;
- `ray start --head` turns token authentication on when a token exists, worker nodes do not: see `auth_env`;
- node death is noticed by the GCS's health checks; `fast_failure_detection` sets them to every 1 s, dead
  after 3 misses (~3 s; Ray's defaults take several times longer), so a lost node's trials are retried sooner;
- ports are picked free just before `ray start` binds them; on a busy machine another process may take one
  in between, so a node whose start fails is started again with new ports.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STARTED_MARKER = "Ray runtime started"
NODE_LABEL = "local-cluster-node"
NODE_ENV = "LOCAL_CLUSTER_NODE"
# GCS health checks: every 1 s, dead after 3 misses -> a lost node is noticed in ~3 s (Ray's defaults: longer)
FAST_FAILURE_ENV = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "3", "RAY_health_check_initial_delay_ms": "1000"}


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free right now on 127.0.0.1 (held open together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def auth_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """RAY_AUTH_MODE for every node of the cluster (and drivers that join it), decided from `environ`
    (default: this process's environment).

    Ray 2.60 quirk: `ray start --head` turns token authentication on by itself when a token is at hand
    (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token), but `ray start --address` (a worker node)
    and `ray.init(address=...)` do not, and then fail with "InvalidAuthToken". The mode is decided once
    here, the way the head decides it, and handed to every process explicitly.
    """
    environ = os.environ if environ is None else environ
    if "RAY_AUTH_MODE" in environ:
        return {"RAY_AUTH_MODE": environ["RAY_AUTH_MODE"]}
    token_path = environ.get("RAY_AUTH_TOKEN_PATH")
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    if environ.get("RAY_AUTH_TOKEN") or (token_path and Path(token_path).is_file()) or \
            (home / ".ray" / "auth_token").is_file():
        return {"RAY_AUTH_MODE": "token"}
    return {"RAY_AUTH_MODE": "disabled"}


def _without_ray_address(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` less RAY_ADDRESS: a variable pointing at another cluster must not reach this one's processes."""
    return {k: v for k, v in environ.items() if k != "RAY_ADDRESS"}


def ray_executable() -> str:
    """The `ray` of this interpreter's environment (the one tunerd runs with), else the one on PATH."""
    beside = Path(sys.executable).with_name("ray")
    if beside.exists():
        return str(beside)
    found = shutil.which("ray")
    if not found:
        raise RuntimeError("the `ray` command is not installed (pip install 'ray[default]')")
    return found


@dataclass
class NodeProcess:
    """One `ray start --block` we started: a head or a worker node."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    cpus: float
    gpus: float
    alive: bool = True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class LocalCluster:
    """Head + `workers` worker nodes on this machine; see the module docstring.

    `head_cpus=0` keeps trials off the head (as on a real cluster whose head only coordinates);
    `cpus_per_worker` and `gpus_per_worker` are what each worker node declares; `environment`, when given,
    is the nodes' environment instead of this process's (a test's own HOME and token, say).
    """

    workers: int = 2
    cpus_per_worker: float = 1
    gpus_per_worker: float = 0
    head_cpus: float = 0
    dashboard: bool = False
    fast_failure_detection: bool = True
    object_store_mb: int = 100
    start_timeout_s: float = 90
    temp_dir: Path | None = None
    keep_temp_dir: bool = False
    environment: dict[str, str] | None = None
    nodes_list: list[NodeProcess] = field(default_factory=list, init=False)
    port: int = field(default=0, init=False)
    client_port: int = field(default=0, init=False)
    dashboard_port: int | None = field(default=None, init=False)
    _own_temp_dir: bool = field(default=False, init=False)

    # -- life cycle -------------------------------------------------------------------------------------
    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """Environment every process of this cluster (and a driver joining it) should have: the auth mode."""
        return auth_env(self._base_env())

    @property
    def driver_env(self) -> dict[str, str]:
        """Environment for a driver started from this process to join the cluster (`tunerd launch
        --address`): this process's, without another cluster's RAY_ADDRESS, plus the cluster's auth mode."""
        return {**_without_ray_address(os.environ), **self.env}

    def _base_env(self) -> dict[str, str]:
        return _without_ray_address(os.environ if self.environment is None else self.environment)

    @property
    def address(self) -> str:
        """What `tunerd launch --address` (and `ray.init(address=...)`) takes."""
        return f"127.0.0.1:{self.port}"

    @property
    def client_address(self) -> str:
        """The head's Ray Client server (`tunerd launch --address ray://...` runs the driver on the head)."""
        return f"ray://127.0.0.1:{self.client_port}"

    @property
    def dashboard_url(self) -> str | None:
        """The job server (`tunerd launch --submit URL`), when started with `dashboard=True`."""
        return f"http://127.0.0.1:{self.dashboard_port}" if self.dashboard_port else None

    def start(self) -> LocalCluster:
        if self.temp_dir is None:
            # short: Ray's socket paths (TEMP/session_<date>_<pid>/sockets/...) must stay under ~107 bytes
            self.temp_dir = Path(tempfile.mkdtemp(prefix="lc", dir="/tmp"))
            self._own_temp_dir = True
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self._start_head()
        for _ in range(self.workers):
            # one at a time: nodes started together on one machine sometimes failed with "The current node
            # timed out during startup" (they share the session folder and number its socket and log files)
            self.add_worker()
        return self

    def _common_args(self, ports: list[int]) -> list[str]:
        node_manager, object_manager, agent_http, agent_grpc, metrics, runtime_env = ports
        return [f"--temp-dir={self.temp_dir}", "--node-ip-address=127.0.0.1",
                f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
                f"--dashboard-agent-listen-port={agent_http}", f"--dashboard-agent-grpc-port={agent_grpc}",
                f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env}",
                "--min-worker-port=0", "--max-worker-port=0",  # 0: random ports, no clash between nodes
                f"--object-store-memory={self.object_store_mb * 1024 * 1024}",
                "--disable-usage-stats", "--block"]

    def _start_head(self) -> None:
        def head_args() -> list[str]:
            ports = free_ports(9)
            self.port, self.client_port = ports[0], ports[1]
            args = ["--head", f"--port={self.port}", f"--ray-client-server-port={self.client_port}",
                    f"--num-cpus={_count(self.head_cpus)}", "--num-gpus=0"]
            if self.dashboard:
                self.dashboard_port = ports[2]
                args += ["--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={ports[2]}"]
            else:
                args += ["--include-dashboard=false"]
            return args + self._common_args(ports[3:])

        env = dict(FAST_FAILURE_ENV) if self.fast_failure_detection else {}
        head = self._start_node("head", head_args, env, self.head_cpus, 0)
        if self.dashboard_url:
            self._wait_answering(head, f"{self.dashboard_url}/api/version")

    def _wait_answering(self, node: NodeProcess, url: str) -> None:
        """Until `url` answers at all (401 without a token counts): `ray start` says the node runs before
        its dashboard, the job server, listens."""
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                return
            except urllib.error.HTTPError:
                return
            except OSError as exc:
                if node.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the dashboard of {node.name} never answered at {url}:\n{node.log_tail()}") \
                        from exc
                time.sleep(0.5)

    def add_worker(self, *, cpus: float | None = None, gpus: float | None = None) -> int:
        """Start one more worker node and wait until it runs; returns its index (its name is `worker{index}`)."""
        index = sum(node.name.startswith("worker") for node in self.nodes_list)
        name = f"worker{index}"
        cpus = self.cpus_per_worker if cpus is None else cpus
        gpus = self.gpus_per_worker if gpus is None else gpus

        def worker_args() -> list[str]:
            return [f"--address={self.address}", f"--num-cpus={_count(cpus)}", f"--num-gpus={_count(gpus)}",
                    f"--labels={NODE_LABEL}={name}", *self._common_args(free_ports(6))]

        self._start_node(name, worker_args, {NODE_ENV: name}, cpus, gpus)
        return index

    def _start_node(self, name: str, make_args: Callable[[], list[str]], env: dict[str, str], cpus: float,
                    gpus: float, attempts: int = 3) -> NodeProcess:
        """Start a node and wait for it; a start that fails (another process took one of the free ports
        chosen for it, on a busy machine) is tried again with new ports."""
        for attempt in range(1, attempts + 1):
            node = self._spawn(name, make_args(), env, cpus, gpus)
            try:
                self._wait_started(node)
                return node
            except RuntimeError:
                _terminate(node, 10)
                self.nodes_list.remove(node)
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self, name: str, args: list[str], env: dict[str, str], cpus: float, gpus: float) -> NodeProcess:
        assert self.temp_dir is not None
        log = self.temp_dir / f"{name}.log"
        with open(log, "wb") as out:
            # a new session per node: Ctrl-C in the terminal reaches only this script (which stops the nodes
            # in order), and the node's whole process group can be killed to simulate losing the machine
            process = subprocess.Popen([ray_executable(), "start", *args], stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env={**self._base_env(), **self.env, **env},
                                       start_new_session=True)
        node = NodeProcess(name, process, log, cpus, gpus)
        self.nodes_list.append(node)
        return node

    def _wait_started(self, node: NodeProcess) -> None:
        """Until `ray start` says the node runs; RuntimeError if it exited, TimeoutError if it takes too long."""
        deadline = time.monotonic() + self.start_timeout_s
        while STARTED_MARKER not in node.log.read_text(errors="replace"):
            if node.process.poll() is not None:
                raise RuntimeError(f"ray start of {node.name} exited with {node.process.returncode}:\n"
                                   f"{node.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node.name} did not start in {self.start_timeout_s:g} s:\n{node.log_tail()}")
            time.sleep(0.3)

    def worker(self, index: int) -> NodeProcess:
        matches = [node for node in self.nodes_list if node.name == f"worker{index}"]
        if not matches:
            raise IndexError(f"no worker{index} in this cluster")
        return matches[0]

    def remove_worker(self, index: int, *, graceful: bool = False, timeout: float = 30) -> None:
        """Take worker node `index` away: SIGKILL its whole process group (a machine that vanished), or with
        `graceful`, SIGTERM its `ray start` (a node drained and shut down)."""
        node = self.worker(index)
        if graceful:
            _terminate(node, timeout)
        else:
            _kill_group(node)
            _reap(node, timeout)
        node.alive = False

    def stop(self, timeout: float = 30) -> None:
        """Stop exactly what this object started: workers first, then the head; then its temp dir."""
        for node in reversed(self.nodes_list):
            if node.alive:
                _terminate(node, timeout)
                node.alive = False
        if self._own_temp_dir and self.temp_dir and not self.keep_temp_dir:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    # -- introspection ----------------------------------------------------------------------------------
    def nodes(self, timeout: float = 60) -> dict[str, str]:
        """{"head": node_id, "worker0": node_id, ...} of the live nodes, asked of the cluster itself.

        It runs in a separate short-lived Python (a Ray driver of its own): the calling process may hold
        another Ray already (the test session does), and one process can join only one cluster.
        """
        code = textwrap.dedent(f"""\
            import json, ray
            ray.init(address={self.address!r}, logging_level="ERROR", log_to_driver=False)
            print(json.dumps([n for n in ray.nodes() if n["Alive"]], default=str))
            """)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              env=self.driver_env)
        if done.returncode != 0:
            raise RuntimeError(f"could not list the nodes of {self.address}:\n{done.stderr[-2000:]}")
        nodes = json.loads(done.stdout.strip().splitlines()[-1])
        return {(node.get("Labels") or {}).get(NODE_LABEL, "head"): node["NodeID"] for node in nodes}

    def wait_for_nodes(self, count: int | None = None, timeout: float = 60) -> dict[str, str]:
        """Wait until `count` nodes (default: every node not removed) are alive; returns `nodes()`."""
        count = sum(node.alive for node in self.nodes_list) if count is None else count
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.nodes()
            if len(nodes) >= count or time.monotonic() > deadline:
                if len(nodes) < count:
                    raise TimeoutError(f"{len(nodes)} of {count} nodes alive after {timeout:g} s")
                return nodes
            time.sleep(1)


def _count(value: float) -> str:
    """`ray start` takes whole numbers of CPUs and GPUs."""
    if value != int(value):
        raise ValueError(f"ray start needs whole CPUs and GPUs per node, got {value}")
    return str(int(value))


def _group_members(pgid: int) -> list[int]:
    """Processes still in process group `pgid` (a group this script created for one node)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid pgrp ...
        if int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _kill_group(node: NodeProcess) -> None:
    pgid = node.process.pid  # start_new_session: the `ray start` is its group's leader
    if _group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _reap(node: NodeProcess, timeout: float) -> None:
    try:
        node.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        node.process.kill()
        node.process.wait(timeout=10)
    deadline = time.monotonic() + timeout
    while _group_members(node.process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)


def _terminate(node: NodeProcess, timeout: float) -> None:
    """SIGTERM the node's `ray start --block` (it stops its own processes), wait, then kill the rest."""
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGTERM)
        try:
            node.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    _kill_group(node)  # leftovers of a slow or stuck shutdown: only this node's own process group
    _reap(node, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A multi-node Ray cluster on this machine (head + N workers).")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the cluster; Ctrl-C (or SIGTERM) stops it")
    up.add_argument("--workers", type=int, default=2, help="worker nodes (default 2)")
    up.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs each worker declares (default 1)")
    up.add_argument("--gpus-per-worker", type=int, default=0, help="GPUs each worker declares (default 0)")
    up.add_argument("--head-cpus", type=int, default=0, help="CPUs of the head for trials (default 0: none)")
    up.add_argument("--dashboard", action="store_true", help="start the dashboard (the job server for --submit)")
    up.add_argument("--keep-logs", action="store_true", help="keep the temp dir (logs) after stopping")
    args = parser.parse_args(argv)

    cluster = LocalCluster(workers=args.workers, cpus_per_worker=args.cpus_per_worker,
                           gpus_per_worker=args.gpus_per_worker, head_cpus=args.head_cpus,
                           dashboard=args.dashboard, keep_temp_dir=args.keep_logs)
    stopping = {"now": False}

    def request_stop(signum: int, frame: Any) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        cluster.start()
        nodes = cluster.wait_for_nodes()
        print(f"local Ray cluster: a head with {args.head_cpus} CPU(s) for trials and {args.workers} worker node(s) "
              f"declaring {args.cpus_per_worker} CPU(s) and {args.gpus_per_worker} GPU(s) each; {len(nodes)} nodes up")
        print(f"address: {cluster.address}")
        print(f"  tunerd launch SPEC --address {cluster.address} --shared-storage")
        print(f"ray client: {cluster.client_address}")
        if cluster.dashboard_url:
            print(f"job server: {cluster.dashboard_url}")
        print(f"logs: {cluster.temp_dir}" + ("" if args.keep_logs else " (removed on stop)"))
        print("Ctrl-C stops the cluster.", flush=True)
        while not stopping["now"]:
            for node in cluster.nodes_list:
                if node.alive and node.process.poll() is not None:
                    print(f"{node.name} exited ({node.process.returncode}):\n{node.log_tail()}", file=sys.stderr)
                    node.alive = False
            time.sleep(0.5)
    finally:
        print("stopping the cluster...", flush=True)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
