"""Which Ray tunerd runs on: a cluster it joins, or an embedded local Ray that only this machine can reach.

Also what is left of an embedded Ray after its driver was killed: `resume` stops it (see `stop_orphaned_ray`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any, Iterator

import ray

from tunerd.auth import use_token_if_present
from tunerd.report import process_alive

log = logging.getLogger("tunerd")

LOOPBACK = "127.0.0.1"
_AUTH_MODE = "RAY_AUTH_MODE"
# Ray's switch for "this node may be part of a multi-node cluster" (named for Windows and macOS, where it is
# off by default). While it is on, Ray replaces a node IP of 127.0.0.1 with the machine's network address
# and its servers listen on every interface; off, they bind to the loopback address alone.
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Join `address`, or start an embedded local Ray bound to 127.0.0.1; stop only what we started."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Ray's old output flow honours verbose=0: tunerd draws progress
    if ray.is_initialized():
        yield
        return
    if address:
        use_token_if_present()
        ray.init(address=address, **_QUIET)
    else:
        start_embedded_ray(num_cpus, pythonpath=_worker_pythonpath())
    try:
        yield
    finally:
        ray.shutdown()


_QUIET: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}


def start_embedded_ray(num_cpus: int | None, *, pythonpath: str) -> None:
    """A single-node Ray whose servers (GCS, raylet, object manager, workers, agents) listen on 127.0.0.1
    only, with token authentication on whatever RAY_AUTH_MODE says: Ray's own default for a local
    `ray.init` listens on every interface of the machine, where anyone on the network could reach it.
    """
    from ray._private import ray_constants

    mode = os.environ.get(_AUTH_MODE)
    if mode is not None and mode.lower() != "token":  # unset: Ray turns it on for a new local Ray itself
        from ray._private.authentication.authentication_token_setup import _enable_token_auth

        log.warning("%s=%s ignored: tunerd's embedded Ray keeps token authentication on", _AUTH_MODE, mode)
        _enable_token_auth()  # the environment for the processes Ray starts, and Ray's cached config here
    saved = os.environ.get(_CLUSTER_SWITCH), ray_constants.ENABLE_RAY_CLUSTER
    # the driver reads the switch from an import-time constant; the processes Ray starts, from the environment
    os.environ[_CLUSTER_SWITCH], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK, runtime_env={"env_vars": {
            "PYTHONPATH": pythonpath,
            # trials keep the folder tunerd was started in, so relative paths (init_from, a user's
            # files) mean what they meant on the command line; Ray would move them into the trial folder
            "RAY_CHDIR_TO_TRIAL_DIR": "0",
        }}, **_QUIET)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]
        if saved[0] is None:
            os.environ.pop(_CLUSTER_SWITCH, None)
        else:
            os.environ[_CLUSTER_SWITCH] = saved[0]


def _worker_pythonpath() -> str:
    """Workers of the embedded Ray import a user's `module:function` from the folder tunerd runs in."""
    return os.pathsep.join(p for p in [os.getcwd(), os.environ.get("PYTHONPATH", "")] if p)


def embedded_ray_processes() -> dict[str, Any] | None:
    """The processes of the Ray this driver started, each as [pid, start time], or None if unknown.

    A driver killed with SIGKILL takes Ray's core processes with it, but the agents they started
    (`ray::DashboardAgent`, `ray::RuntimeEnvAgent`) live on under init; `resume` stops them. The start time
    makes sure a pid reused since then by another process is never touched.
    """
    try:
        import psutil

        node = ray._private.worker._global_node  # no public API lists a local Ray's processes
        core = [psutil.Process(info.process.pid) for infos in node.all_processes.values() for info in infos]
        processes = {p.pid: p for process in core for p in [process, *process.children(recursive=True)]}
        return {"session": node.get_session_dir_path(),
                "processes": sorted([pid, p.create_time()] for pid, p in processes.items())}
    except Exception:
        return None


def stop_orphaned_ray(driver: dict[str, Any]) -> list[int]:
    """Stop what is left of the embedded Ray of a driver that died without stopping it (same host, driver
    pid gone): only the processes recorded at launch that still have their recorded start time."""
    import psutil

    recorded = (driver.get("ray") or {}).get("processes") or []
    if not recorded or driver.get("host") != socket.gethostname() or process_alive(driver.get("pid")):
        return []
    ours = []
    for pid, started in recorded:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            if abs(process.create_time() - started) < 0.5 and process.status() != psutil.STATUS_ZOMBIE:
                ours.append(process)
    for process in ours:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, still = psutil.wait_procs(ours, timeout=5)  # the agents may ignore SIGTERM
    for process in still:
        with contextlib.suppress(psutil.Error):
            process.kill()
    if ours:
        log.warning("stopped %d Ray processes left running by the killed driver", len(ours))
    return [process.pid for process in ours]


