"""tunerd's Python API: what the CLI calls, and what users and tests call directly.

Loading and planning read only the experiment file (no Ray, no torch); `launch` and `resume` import the
runner, which brings Ray.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from tunerd import spec as speclib
from tunerd.errors import SpecError, UsageError
from tunerd.options import RunOptions
from tunerd.space import Choice, Distribution, Grid, flatten
from tunerd.spec import Experiment
from tunerd.storage import ExperimentLocation, resolve_storage
from tunerd.trainable import check_trainable

if TYPE_CHECKING:
    from tunerd.runner import Outcome


def load(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = (), *,
         name: str | None = None, storage: str | None = None) -> Experiment:
    """Read and validate an experiment file, the trainable's import included (raises `UsageError`s): the one
    check of a file; past it the runner trusts the `Experiment`."""
    experiment = speclib.load(path, overrides, name=name, storage=storage)
    check_trainable(experiment)
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
    flat = flatten(experiment.space, sep=".")
    searched = {k: _describe(v) for k, v in flat.items() if isinstance(v, (Distribution, Choice, Grid))}
    resources = spec.resources
    return {
        "name": spec.name,
        "trainable": spec.trainable,
        "data": experiment.data_for_trainable(),
        **({"objectives": f"{', '.join(f'{o.metric} ({o.mode})' for o in spec.objectives)}; best/: the best "
                          f"{spec.metric}"} if spec.objectives else {"metric": f"{spec.metric} ({spec.mode})"}),
        **({"constraints": ", ".join(c.describe() for c in spec.goal().constraints)} if spec.constraints else {}),
        "algorithm": (f"auto -> {experiment.algorithm.describe(experiment.search_options)}: "
                      f"{experiment.chosen_because}" if experiment.chosen_because
                      else experiment.algorithm.describe(experiment.search_options)),
        "scheduler": experiment.scheduler.describe(spec),
        "trials": experiment.trial_count,
        "max_concurrent": spec.search.max_concurrent or "as resources allow",
        "resources per trial": f"cpu {resources.cpu:g}, gpu {resources.gpu:g}" if resources.workers == 1
        else f"{resources.workers} workers, each cpu {resources.cpu:g}, gpu {resources.gpu:g}",
        **({"warm start": "; ".join(s.describe() for s in experiment.warm_start.sources)}
           if experiment.warm_start is not None else {}),
        "searched": searched,
        "constants": {k: v for k, v in flat.items() if k not in searched},
        "results": ExperimentLocation(experiment.storage, experiment.name).where,
    }


def _options(run: RunOptions | None, flags: dict[str, Any]) -> RunOptions:
    if run is not None and flags:
        raise TypeError("pass the run options as `run=RunOptions(...)` or as keywords, not both")
    return run if run is not None else RunOptions(**flags)


def launch(experiment: Experiment | str | os.PathLike[str], run: RunOptions | None = None,
           **flags: Any) -> Outcome:
    """Run an experiment (a loaded `Experiment` or a file path) to the end; returns its `Outcome`.

    How it runs is `run` (a `RunOptions`), or the same as keywords: `tunerd.launch(path, quiet=True)`."""
    options = _options(run, flags)
    if not isinstance(experiment, Experiment):
        experiment = load(experiment)
    if options.via_ray_client:
        from tunerd import client

        return client.launch(experiment, options)
    from tunerd import runner

    return runner.launch(experiment, options)


def resume(name: str, *, storage: str | None = None, extend: int = 0, run: RunOptions | None = None,
           **flags: Any) -> Outcome:
    """Finish the interrupted or crashed experiment `name` from its files in the storage (`tunerd resume`);
    `extend`: run that many more trials, also on a finished experiment (`--extend N`).

    The experiment runs as it was launched: its resolved `spec.yaml` is read back from the storage."""
    import tempfile

    from tunerd.report import read_summary
    from tunerd.storage import read_text

    options = _options(run, flags)
    if options.via_ray_client:
        raise UsageError("--address ray://: resume runs where the experiment's files are; run it on the head "
                         "node, or join with --address HOST:PORT")
    try:
        root = resolve_storage(storage)
    except ValueError as exc:
        raise UsageError(f"--storage: {exc}") from None
    read_summary(root, name)  # a missing experiment: a UsageError naming the storage and close names
    text = read_text(root, f"{name}/spec.yaml")
    if text is None:
        raise UsageError(f"experiment {name!r} in {root} has no spec.yaml: it cannot be resumed")
    with tempfile.TemporaryDirectory(prefix="tunerd-resume-") as folder:
        path = os.path.join(folder, "spec.yaml")
        with open(path, "w") as handle:
            handle.write(text)
        try:
            experiment = load(path, name=name, storage=root)
        except SpecError as exc:  # named as the file in the storage, not the temporary copy
            raise SpecError(exc.problems, f"{root.rstrip('/')}/{name}/spec.yaml (damaged?)") from None
    from tunerd import runner

    return runner.resume(experiment, options, extend=extend)
