"""tunerd's Python API: what the CLI calls, and what users and tests call directly."""
from __future__ import annotations

import os
from typing import Any

from tunerd import client, runner, spec as speclib
from tunerd.errors import UsageError
from tunerd.space import Choice, Distribution, Grid, flatten
from tunerd.spec import Experiment


def load(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = (), *,
         name: str | None = None, storage: str | None = None) -> Experiment:
    """Read and validate an experiment file, the trainable's import included (raises `UsageError`s)."""
    experiment = speclib.load(path, overrides, name=name, storage=storage)
    runner.check_trainable(experiment)
    return experiment


def _describe(node: Any) -> str:
    if isinstance(node, Distribution):
        return f"{node.kind}{list(node.args)}"
    if isinstance(node, Choice):
        return f"choice of {len(node.options)}"
    if isinstance(node, Grid):
        return f"grid of {len(node.values)}"
    return repr(node)


def plan(experiment: Experiment) -> dict[str, Any]:
    """The resolved plan `tunerd validate` prints: what will run, how many trials, on what."""
    spec = experiment.spec
    searched = {k: _describe(v) for k, v in flatten(experiment.space, sep=".").items()
                if isinstance(v, (Distribution, Choice, Grid))}
    constants = {k: v for k, v in flatten(experiment.space, sep=".").items() if k not in searched}
    return {
        "name": spec.name,
        "trainable": spec.trainable,
        "data": spec.data.model_dump(exclude_none=True),
        "metric": f"{spec.metric} ({spec.mode})",
        "algorithm": spec.search.algorithm,
        "scheduler": spec.scheduler.name if spec.scheduler.name == "fifo" else
        f"{spec.scheduler.name} (grace_period {spec.scheduler.grace_period}, "
        f"reduction_factor {spec.scheduler.reduction_factor:g}, max_t {spec.stop.max_epochs})",
        "trials": experiment.trial_count,
        "max_concurrent": spec.search.max_concurrent or "as resources allow",
        "resources per trial": f"cpu {spec.resources.cpu:g}, gpu {spec.resources.gpu:g}" if spec.resources.workers == 1
        else f"{spec.resources.workers} workers, each cpu {spec.resources.cpu:g}, gpu {spec.resources.gpu:g}",
        "searched": searched,
        "constants": constants,
        "results": runner.experiment_location(experiment).where,
    }


def launch(experiment: Experiment | str | os.PathLike[str], *, address: str | None = None,
           overwrite: bool = False, quiet: bool = False, num_cpus: int | None = None,
           shared_storage: bool = False, json_lines: bool = False) -> runner.Outcome:
    """Run an experiment (a loaded `Experiment` or a file path) to the end; returns its `Outcome`.

    `shared_storage=True` says a folder `storage` is mounted on every node of the cluster at `address`."""
    if not isinstance(experiment, Experiment):
        experiment = load(experiment)
    if address is not None and client.is_client_address(address):
        return client.launch(experiment, address=address, overwrite=overwrite, quiet=quiet,
                             shared_storage=shared_storage, json_lines=json_lines)
    return runner.launch(experiment, address=address, overwrite=overwrite, quiet=quiet, num_cpus=num_cpus,
                         shared_storage=shared_storage, json_lines=json_lines)


def resume(name: str, *, storage: str | None = None, address: str | None = None, quiet: bool = False,
           num_cpus: int | None = None, shared_storage: bool = False, json_lines: bool = False) -> runner.Outcome:
    """Finish the interrupted or crashed experiment `name` from its files in the storage (`tunerd resume`).

    The experiment runs as it was launched: its resolved `spec.yaml` is read back from the storage."""
    import tempfile

    from tunerd.report import read_summary
    from tunerd.storage import read_text

    if address is not None and client.is_client_address(address):
        raise UsageError("--address ray://: resume runs where the experiment's files are; run it on the head "
                         "node, or join with --address HOST:PORT")
    root = speclib.resolve_storage(storage, None)
    read_summary(root, name)  # a missing experiment: a UsageError naming the storage and close names
    text = read_text(root, f"{name}/spec.yaml")
    if text is None:
        raise UsageError(f"experiment {name!r} in {root} has no spec.yaml: it cannot be resumed")
    with tempfile.TemporaryDirectory(prefix="tunerd-resume-") as folder:
        path = os.path.join(folder, "spec.yaml")
        with open(path, "w") as handle:
            handle.write(text)
        experiment = load(path, name=name, storage=root)
    return runner.resume(experiment, address=address, quiet=quiet, num_cpus=num_cpus, shared_storage=shared_storage,
                         json_lines=json_lines)
