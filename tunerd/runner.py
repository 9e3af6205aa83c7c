"""Runs an experiment on Ray Tune: storage checks, the Ray session, the Tuner, and the final record.

The flow: a validated `Experiment` -> trainable (built-in or the user's) with its resources -> searcher,
scheduler, stoppers -> `Tuner.fit()` with tunerd's callbacks (record, TensorBoard, progress) -> the best
trial's model exported to `best/` and scored once on the held-out test split.
"""
from __future__ import annotations

import contextlib
import errno
import inspect
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import ray
import yaml
from ray import tune
from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig
from ray.tune.search import Searcher
from ray.tune.stopper import CombinedStopper

from trainables.files import write_atomic
from tunerd import ray_internals
from tunerd.errors import TunerdError, UsageError
from tunerd.exports import export_model
from tunerd.failfast import FailFast
from tunerd.hangs import HangWatch
from tunerd.objectives import Goal, Objective
from tunerd.options import RunOptions
from tunerd.progress import ProgressView
from tunerd.raystate import check_state
from tunerd.reaper import OrphanReaper
from tunerd.report import driver_identity
from tunerd.resources import fit, max_concurrent, misfit_message
from tunerd.results import ExperimentRecord, RecordCallback, best_of
from tunerd.session import embedded_ray_processes, ray_session, stop_orphaned_ray
from tunerd.spec import Experiment
from tunerd.stoppers import build_stopper
from tunerd.storage import ExperimentLocation
from tunerd.summary import ExperimentState, TrialStatus
from tunerd.tensorboard import HParamsTensorBoardCallback
from tunerd.trainable import import_user_trainable

log = logging.getLogger("tunerd")


@dataclass
class Outcome:
    """What `launch` hands back: the final state and the record it wrote."""

    state: ExperimentState  # finished | failed | interrupted
    folder: Path  # where tunerd's files are on this machine (for a URI storage: the local mirror)
    record: ExperimentRecord
    where: str = ""  # the experiment as users name it: the folder, or the URI

    def __post_init__(self) -> None:
        self.where = self.where or str(self.folder)

    @property
    def summary(self) -> dict[str, Any]:
        """`summary.json`'s content (typed: `record.summary()`)."""
        return self.record.summary().to_json()


def experiment_location(experiment: Experiment) -> ExperimentLocation:
    return ExperimentLocation(experiment.storage, experiment.name)


def build_trainable(experiment: Experiment) -> Any:
    spec = experiment.spec
    data = experiment.data_for_trainable()
    if experiment.is_builtin:
        from trainables import TrialContext, train_builtin

        metric = learning_objective(spec.goal())
        context = TrialContext(trainable=spec.trainable, data=data, seed=spec.seed,
                               max_epochs=spec.stop.max_epochs, checkpoint_every=spec.checkpoint.every,
                               metric=metric.metric, mode=metric.mode, storage=experiment.storage,
                               quantize=spec.export.quantize)
        if spec.resources.workers > 1:
            return _distributed_trainable(experiment, context)
        function = tune.with_parameters(train_builtin, context=context)
    else:
        function = import_user_trainable(spec.trainable)
        if "data" in inspect.signature(function).parameters:
            function = tune.with_parameters(function, data=data)
    return tune.with_resources(function, {"cpu": spec.resources.cpu, "gpu": spec.resources.gpu})


def learning_objective(goal: Goal) -> Objective:
    """The objective a built-in's early stopping (`early_stopping_patience`) watches: the `select` one,
    unless that is a cost the model has from its first epoch (`params`, `latency_ms`, ...), which cannot
    improve: then the first objective that is learnt."""
    from trainables.catalog import COST_METRICS, INT8_METRICS, TABULAR_METRICS

    fixed = (*COST_METRICS, *INT8_METRICS, *TABULAR_METRICS)
    learnt = [objective for objective in goal.objectives if objective.metric not in fixed]
    return goal.selected if goal.select not in fixed or not learnt else learnt[0]


def _distributed_trainable(experiment: Experiment, context: Any) -> Any:
    """A multi-worker trial: a Tune actor that reserves nothing and runs its Ray Train workers (see
    `trainables.distributed`); the Train runs keep their scratch under the experiment, where every node
    writes (a folder every node mounts, or the URI)."""
    from trainables.distributed import DRIVER_RESOURCES, DistributedTrial, WorkerGroup

    resources = experiment.spec.resources
    base, _, query = experiment_location(experiment).where.partition("?")
    group = WorkerGroup(workers=resources.workers, cpu=resources.cpu, gpu=resources.gpu,
                        storage=f"{base}/train_runs" + (f"?{query}" if query else ""))
    trial = tune.with_parameters(DistributedTrial, context=context, group=group)
    return tune.with_resources(trial, tune.PlacementGroupFactory([DRIVER_RESOURCES]))


def check_resources(experiment: Experiment, *, joined: bool) -> None:
    """A trial that fits on no node (a multi-worker trial: whose workers the cluster cannot hold together)
    would wait forever: say so before any trial starts.

    On a cluster that was joined, an autoscaler may still add a node that fits: there it is a warning.
    """
    resources = experiment.spec.resources
    found = fit(resources, ray.nodes())
    if found.fits:
        return
    message = misfit_message(resources, found)
    if not joined:
        raise UsageError(message)
    log.warning("%s; trials will wait for a node that fits (autoscaler?)", message)


def check_storage_reachable(experiment: Experiment, *, shared: bool) -> None:
    """Every node writes its trials' checkpoints and results to `storage` (Ray Tune has no node-to-node
    sync since Ray 2.7): a folder only this machine sees would fail the first checkpoint of a trial on
    another node, deep inside the run. Refuse it up front on a multi-node cluster unless told it is shared.
    """
    if shared or "://" in experiment.storage:
        return
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if len(nodes) > 1:
        raise UsageError(
            f"storage {experiment.storage}: a local folder, but the Ray cluster has {len(nodes)} nodes and trials "
            "on the others could not write their checkpoints there; use a URI every node reaches "
            "(s3://BUCKET/PATH, gs://BUCKET/PATH), or a folder mounted at the same path on every node (NFS, "
            "EFS) and pass --shared-storage")


def trial_dirname(trial: Any) -> str:
    """Short, stable trial folder names (Ray's default embeds the whole config)."""
    return f"trial_{trial.trial_id}"


def _callbacks(experiment: Experiment, record: ExperimentRecord, options: RunOptions) -> list[Any]:
    callbacks: list[Any] = [RecordCallback(record, max_epochs=experiment.spec.stop.max_epochs)]
    if experiment.spec.tensorboard:
        goal = experiment.spec.goal()
        callbacks.append(HParamsTensorBoardCallback((*goal.metrics, *(c.metric for c in goal.constraints))))
    callbacks.append(ProgressView(record, quiet=options.quiet, json_lines=options.json_lines,
                                  max_epochs=experiment.spec.stop.max_epochs))
    if experiment.spec.failures.hang_timeout_s is not None:
        callbacks.append(HangWatch(experiment.spec.failures.hang_timeout_s))
    if experiment.spec.resources.workers > 1:
        callbacks.append(OrphanReaper())  # the workers of a trial whose process died (see tunerd.reaper)
    return callbacks


def build_tuner(experiment: Experiment, record: ExperimentRecord, options: RunOptions,
                fail_fast: FailFast | None = None) -> tune.Tuner:
    spec = experiment.spec
    concurrent = max_concurrent(spec.resources, spec.search.max_concurrent, ray.nodes(),
                                model_based=experiment.algorithm.learns)
    search_alg, param_space = experiment.algorithm.build(experiment, max_concurrent=concurrent)
    return tune.Tuner(
        build_trainable(experiment),
        param_space=param_space,
        tune_config=TuneConfig(
            metric=spec.metric,
            mode=spec.mode,
            search_alg=search_alg,
            scheduler=experiment.scheduler.build(spec),
            num_samples=experiment.num_samples,
            # the variant generator (grid, random) got it already; Tune would only warn that it ignores it
            max_concurrent_trials=concurrent if isinstance(search_alg, Searcher) else None,
            time_budget_s=spec.stop.time_budget_s,
            # a reused trial actor is kept without being stopped: a multi-worker trial's Train run (and its
            # workers' CPUs) would live on in it, so those trials get a fresh actor each
            reuse_actors=spec.resources.workers == 1,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=RunConfig(
            name=experiment.name,
            storage_path=experiment.storage,
            stop=build_stopper(spec) if fail_fast is None else CombinedStopper(build_stopper(spec), fail_fast),
            checkpoint_config=CheckpointConfig(num_to_keep=spec.checkpoint.keep,
                                               checkpoint_score_attribute=spec.metric,
                                               checkpoint_score_order=spec.mode),
            failure_config=FailureConfig(max_failures=spec.failures.max_retries),
            callbacks=_callbacks(experiment, record, options) + ([fail_fast] if fail_fast is not None else []),
            verbose=0,
        ),
    )


def launch(experiment: Experiment, options: RunOptions) -> Outcome:
    """Run the experiment to the end and write its record; see `Outcome` for what comes back.

    The experiment is trusted as loaded (`tunerd.api.load` checked the file and the trainable once). A
    second launch or resume of the same name meanwhile exits 2 (`ExperimentLocation.lock`).
    """
    location = experiment_location(experiment)
    with location.lock():
        location.check(overwrite=options.overwrite)
        with ray_session(options.address, options.num_cpus):
            check_storage_reachable(experiment, shared=options.shared_storage)
            check_resources(experiment, joined=options.address is not None)
            location.create()
            folder = location.local
            _write_spec(location, experiment.resolved())
            record = ExperimentRecord(folder, name=experiment.name, goal=experiment.spec.goal(),
                                      trial_count=experiment.trial_count, on_write=location.publish)
            record.algorithm = experiment.algorithm_record()
            record.warm_start = experiment.warm_start.record() if experiment.warm_start is not None else None
            fail_fast = FailFast(experiment.spec.failures.fail_fast) if experiment.spec.failures.fail_fast else None
            tuner = build_tuner(experiment, record, options, fail_fast)
            return _run(experiment, record, location, tuner, embedded=not options.address, fail_fast=fail_fast)


def resume(experiment: Experiment, options: RunOptions, *, extend: int = 0) -> Outcome:
    """Finish an interrupted or crashed experiment with Ray Tune's `Tuner.restore`: finished trials are
    kept (not re-run), unfinished and errored ones continue from their last checkpoint, the searcher
    continues from its saved state, and tunerd's record goes on from its `summary.json`.

    `extend`: that many more trials (also on a finished experiment), suggested by the searcher as it left
    off; `spec.yaml`'s `num_samples` grows with them, so a later resume knows. Errored trials of a finished
    experiment stay as they are."""
    samples = experiment.samples_for(extend) if extend else 0  # before Ray: a grid cannot grow
    location = experiment_location(experiment)
    with location.lock():
        return _resume(experiment, options, location, extend=extend, samples=samples)


def _resume(experiment: Experiment, options: RunOptions, location: ExperimentLocation, *, extend: int,
            samples: int) -> Outcome:
    from tunerd.report import effective_state, read_summary

    previous = read_summary(experiment.storage, experiment.name)
    state = effective_state(previous)
    driver = previous.driver or {}
    if state == ExperimentState.RUNNING:
        raise UsageError(f"experiment '{experiment.name}' is still running (pid {driver.get('pid')} on "
                         f"{driver.get('host')}); stop it first (Ctrl-C) or wait")
    if state == ExperimentState.FINISHED and not extend:
        raise UsageError(f"experiment '{experiment.name}' has already finished; nothing to resume (more trials: "
                         f"tunerd resume {experiment.name} --extend N)")
    stop_orphaned_ray(driver)
    check_state(experiment.storage, experiment.name)  # before Ray: a half-written state would start over
    with ray_session(options.address, options.num_cpus):
        check_storage_reachable(experiment, shared=options.shared_storage)
        check_resources(experiment, joined=options.address is not None)
        record = ExperimentRecord.from_summary(location.local, previous, on_write=location.publish)
        tuner = tune.Tuner.restore(location.where, trainable=build_trainable(experiment), resume_unfinished=True,
                                   resume_errored=state != ExperimentState.FINISHED)
        _forget_lost_trials(record, tuner)
        # Ray pickles the run config, callbacks included, into tuner.pkl when the Tuner is created: the
        # restored callbacks hold the record as it was then (empty); the current ones replace them
        ray_internals.replace_restored_callbacks(tuner, _callbacks(experiment, record, options))
        if extend:
            ray_internals.extend_restored_search(tuner, trials=extend, samples=samples)
            record.trial_count += extend
            grown = experiment.resolved()
            grown["search"]["num_samples"] = experiment.num_samples + samples
            _write_spec(location, grown)
        return _run(experiment, record, location, tuner, embedded=not options.address)


def _write_spec(location: ExperimentLocation, resolved: dict[str, Any]) -> None:
    """`spec.yaml`: the experiment as it runs (`Experiment.resolved`), what `resume` reads back."""
    write_atomic(location.local / "spec.yaml", yaml.safe_dump(resolved, sort_keys=False))
    location.publish(location.local / "spec.yaml", force=True)


def _forget_lost_trials(record: ExperimentRecord, tuner: tune.Tuner) -> None:
    """Trials the killed driver started after Ray Tune last saved its state are not in the restored run:
    they leave the record (the restored searcher suggests their configurations again), with a warning."""
    try:
        results = tuner.get_results()  # the restored state, read by `restore`
    except RuntimeError:  # Ray could not read that state: `fit` says why
        return
    known = {Path(result.path).name.removeprefix("trial_") for result in results}  # see trial_dirname
    lost = record.forget_trials_ray_lost(known)
    if lost:
        log.warning("%d trial(s) started after Ray Tune last saved its state, before the driver stopped, and "
                    "are not in the restored run: %s; their configurations are suggested again as new trials",
                    len(lost), ", ".join(t.trial_id for t in lost))


def _run(experiment: Experiment, record: ExperimentRecord, location: ExperimentLocation, tuner: tune.Tuner, *,
         embedded: bool, fail_fast: FailFast | None = None) -> Outcome:
    """`Tuner.fit` with the record kept current, and the end of the run (export, test score) written."""
    record.state = ExperimentState.RUNNING
    record.error = None
    # who runs it: `status` tells a killed driver by this, `resume` stops the Ray it leaves behind
    record.driver = {**driver_identity(), **({"ray": embedded_ray_processes()} if embedded else {})}
    record.write()
    try:
        with _interrupt_watch() as interrupted, ray_internals.quiet_trial_tracebacks():
            results = tuner.fit()
    except KeyboardInterrupt:
        return _interrupted(record, location)
    except Exception as exc:  # Ray's own failure (not a trial's), or tunerd's record could not be written
        _failed(record, location, exc)
    try:
        if interrupted[0]:
            return _interrupted(record, location)
        if fail_fast is not None and fail_fast.reason is not None:
            record.reconcile(results, max_epochs=experiment.spec.stop.max_epochs)
            record.state = ExperimentState.FAILED
            record.error = fail_fast.reason
            return _outcome(record, location)
        return _finish(experiment, record, location, results)
    except OSError as exc:  # the end of the run (the record, best/) could not be written
        if disk_full(exc) is None:
            raise
        _failed(record, location, exc)


def disk_full(exc: BaseException) -> OSError | None:
    """The `ENOSPC` (no space left on the device) behind `exc`, if any: Ray Tune wraps what a callback
    raised, so the cause chain is searched."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _failed(record: ExperimentRecord, location: ExperimentLocation, exc: Exception) -> NoReturn:
    """Record the failure where the disk allows and raise it as one line. A full disk: `summary.json` stays
    the last version written (atomic writes never leave half a file), and the message says how to go on."""
    full = disk_full(exc)
    if full is not None:
        where = full.filename or location.local
        reason = (f"no space left on the device holding {where} (ENOSPC): the experiment stopped; summary.json "
                  f"holds its last good version; free some space, then: tunerd resume {record.name}")
    else:
        reason = f"{type(exc).__name__}: {exc}"
    record.state = ExperimentState.FAILED
    record.error = reason
    try:
        record.write()
        location.publish_all()
    except OSError as again:
        if disk_full(again) is None:
            raise
    raise TunerdError(f"the experiment failed: {reason}") from exc


@contextlib.contextmanager
def _interrupt_watch() -> Iterator[list[bool]]:
    """Tell whether Ray Tune caught a Ctrl-C during `fit` (the yielded flag is set on leaving).

    Tune handles the first SIGINT itself (stops the trials, saves the experiment state for
    `Tuner.restore`, returns normally) and then puts back the handler it found. Installing our own
    handler first tells us afterwards whether that happened; Tune offers no other way to know.
    """
    interrupted = [False]
    if threading.current_thread() is not threading.main_thread() or \
            os.environ.get("TUNE_DISABLE_SIGINT_HANDLER", "0") == "1":
        yield interrupted
        return
    previous = signal.getsignal(signal.SIGINT)

    def raise_interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, raise_interrupt)
    try:
        yield interrupted
    finally:
        interrupted[0] = signal.getsignal(signal.SIGINT) is raise_interrupt
        signal.signal(signal.SIGINT, previous)


def _interrupted(record: ExperimentRecord, location: ExperimentLocation) -> Outcome:
    record.state = ExperimentState.INTERRUPTED
    return _outcome(record, location)


def _finish(experiment: Experiment, record: ExperimentRecord, location: ExperimentLocation, results: Any) -> Outcome:
    record.reconcile(results, max_epochs=experiment.spec.stop.max_epochs)
    best = record.best()
    if best is None:
        record.state = ExperimentState.FAILED
        record.error = _why_no_best(record, experiment.spec.metric)
        return _outcome(record, location)
    checkpoint = _best_checkpoint(results, best.trial_id, experiment.spec.goal())
    if checkpoint is not None:
        record.best_checkpoint = location.uri_of(checkpoint.path)
        with checkpoint.as_directory() as local:  # a remote checkpoint is downloaded for the export
            _export(experiment, record, Path(local), location.local / "best")
    record.state = ExperimentState.FINISHED
    return _outcome(record, location)


def _why_no_best(record: ExperimentRecord, metric: str) -> str:
    """One line on why no trial can be the best: what a user reads first when every trial failed."""
    trials = sorted(record.trials.values(), key=lambda t: t.index)
    statuses = {t.status for t in trials}
    if trials and statuses == {TrialStatus.ERRORED}:
        return f"all {len(trials)} trials errored; the first error: {trials[0].error}"
    if trials and statuses == {TrialStatus.DIVERGED}:
        return f"all {len(trials)} trials diverged (a non-finite {metric} or loss); try a smaller learning rate"
    return f"no trial reported a finite value of {metric}"


def _outcome(record: ExperimentRecord, location: ExperimentLocation) -> Outcome:
    """Write the final record (and copy everything to a URI storage) and say how the run ended."""
    record.write()
    record.write_leaderboard()
    location.publish_all()
    return Outcome(record.state, location.local, record, location.where)


def _best_checkpoint(results: Any, trial_id: str, goal: Goal) -> Any:
    """The trial's kept checkpoint whose report is its best by the goal (as `ExperimentRecord` picks a trial's
    result; a pruned model's over a dense one's), else its last."""
    for result in results:
        if (result.metrics or {}).get("trial_id") == trial_id:
            best = best_of(goal, result.best_checkpoints)
            return best if best is not None else result.checkpoint
    return None


def _export(experiment: Experiment, record: ExperimentRecord, checkpoint_dir: Path, best_dir: Path) -> None:
    """`best/` rebuilds the winner; built-ins are also scored once on the test split (never seen before)."""
    test, export = export_model(checkpoint_dir, best_dir, builtin=experiment.is_builtin,
                                quantize=experiment.spec.export.quantize)
    record.test = test if test is not None else record.test
    record.export = export if export is not None else record.export
