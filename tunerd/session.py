"""Which Ray tunerd runs on: a cluster it joins, or an embedded local Ray that only this machine can reach.

Also what is left of an embedded Ray after its driver was killed: `resume` stops it (see `stop_orphaned_ray`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import ray

from tunerd import ray_internals
from tunerd.report import process_alive

log = logging.getLogger("tunerd")

_AUTH_MODE = "RAY_AUTH_MODE"


@contextlib.contextmanager
def ray_session(address: str | None, num_cpus: int | None = None) -> Iterator[None]:
    """Join `address`, or start an embedded local Ray bound to 127.0.0.1; stop only what we started."""
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # Ray's old output flow honours verbose=0: tunerd draws progress
    if ray.is_initialized():
        yield
        return
    if address:
        ray_internals.use_token_if_present()
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
    mode = os.environ.get(_AUTH_MODE)
    if mode is not None and mode.lower() != "token":  # unset: Ray turns it on for a new local Ray itself
        log.warning("%s=%s ignored: tunerd's embedded Ray keeps token authentication on", _AUTH_MODE, mode)
        ray_internals.force_token_auth()
    ray_internals.start_loopback_ray(num_cpus=num_cpus, include_dashboard=False, runtime_env={"env_vars": {
        "PYTHONPATH": pythonpath,
        # trials keep the folder tunerd was started in, so relative paths (init_from, a user's
        # files) mean what they meant on the command line; Ray would move them into the trial folder
        "RAY_CHDIR_TO_TRIAL_DIR": "0",
    }}, **_QUIET)


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

        session, pids = ray_internals.local_ray_processes()
        core = [psutil.Process(pid) for pid in pids]
        processes = {p.pid: p for process in core for p in [process, *process.children(recursive=True)]}
        return {"session": session, "processes": sorted([pid, p.create_time()] for pid, p in processes.items())}
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


