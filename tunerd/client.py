"""`--address ray://HEAD:10001`: run tunerd's driver on the cluster's head node through Ray Client.

Ray Tune under Ray Client already runs `Tuner.fit` in an actor on the head; tunerd's callbacks would then
update a copy of the experiment's record over there, and the export of the winner would read checkpoints
the client may not see. So the whole of `runner.launch` goes to the head as one task instead, and only
its `Outcome` comes back. Consequences, documented in the README: `storage` is a path on the head (or a
URI), and a user's trainable module from the current folder travels with the task (`py_modules`).
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from tunerd import ray_internals, runner
from tunerd.errors import TunerdError, UsageError
from tunerd.options import RunOptions
from tunerd.spec import Experiment


def launch(experiment: Experiment, options: RunOptions) -> runner.Outcome:
    """Connect to the cluster at `options.address` (ray://), run the experiment on its head node, disconnect."""
    assert options.address is not None
    ray_internals.use_token_if_present()
    _connect(options.address, _runtime_env(experiment), quiet=options.quiet)
    try:
        task = ray.remote(num_cpus=0)(_launch_on_head).options(scheduling_strategy=_on_head_node())
        reference = task.remote(experiment, options)
        try:
            return ray.get(reference)
        except KeyboardInterrupt:
            ray.cancel(reference)
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceerror() if hasattr(exc, "as_instanceerror") else exc.cause
            if isinstance(cause, (UsageError, TunerdError)):
                raise cause from None
            raise TunerdError(f"the experiment failed on the head node: {exc}") from None
    finally:
        ray.shutdown()


def _connect(address: str, runtime_env: dict[str, Any], *, quiet: bool, attempts: int = 3) -> None:
    """Ray Client connects through a proxy that starts one server process per client. On a busy head that
    start sometimes fails at once ("Starting Ray client server failed", or psutil losing the new process);
    a new connection gets a new server, so a failed one is tried again, a few times, before giving up."""
    for attempt in range(1, attempts + 1):
        try:
            # the workers' log level travels in the job config (Ray Client drops ray.init's
            # logging_level); the driver task's prints (the progress view) come back with log_to_driver
            ray.init(address=address, runtime_env=runtime_env, log_to_driver=not quiet,
                     logging_config=ray.LoggingConfig(log_level="ERROR"))
            return
        except ConnectionError as exc:
            if attempt == attempts:
                raise TunerdError(f"--address {address}: cannot connect to the Ray Client server "
                                  f"({str(exc).strip().splitlines()[-1]})") from None
            time.sleep(2.0 * attempt)


def _launch_on_head(experiment: Experiment, options: RunOptions) -> runner.Outcome:
    # inside the cluster Ray is already initialised: `ray_session` joins it as it is ("auto"), and
    # resources are judged as on any joined cluster (an autoscaler may add nodes)
    return runner.launch(experiment, replace(options, address="auto"))


def _on_head_node() -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    head = next((node["NodeID"] for node in ray.nodes()
                 if node.get("Alive") and "node:__internal_head__" in node.get("Resources", {})), None)
    if head is None:
        return "DEFAULT"
    return NodeAffinitySchedulingStrategy(node_id=head, soft=False)


def _runtime_env(experiment: Experiment) -> dict[str, Any]:
    """Ship the user's trainable module when it lives in the current folder (not when it is installed)."""
    if experiment.is_builtin:
        return {}
    module_name = experiment.spec.trainable.partition(":")[0]
    module = sys.modules.get(module_name.split(".")[0])
    source = Path(getattr(module, "__file__", "") or "")
    if not source.name or not source.resolve().is_relative_to(Path.cwd().resolve()):
        return {}
    return {"py_modules": [str(source.parent if source.name == "__init__.py" else source)]}
