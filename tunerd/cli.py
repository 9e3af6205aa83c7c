"""The `tunerd` command line: parses and prints; the work is done by `tunerd.api` (and `report`, `jobs`).

Exit status (SPEC §2): 0 done, 1 the experiment failed, 2 bad usage or a bad file, 130 interrupted. tunerd's
errors are turned into them in one place, the group (`TunerdGroup`). Every module is imported by the
command that needs it: `--help`, `status`, `show`, `jobs` and `validate` of a built-in load neither Ray nor
torch.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import click

from tunerd.errors import TunerdError, UsageError
from tunerd.options import RunOptions

if TYPE_CHECKING:
    from tunerd.report import Shown
    from tunerd.spec import Experiment
    from tunerd.summary import Summary

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"error: {message}" if "\n" not in message else f"error:\n{message}", err=True)
    sys.exit(code)


class TunerdGroup(click.Group):
    """The one place tunerd's errors become exit codes: a `UsageError` (a bad file, option or name) exits 2,
    any other `TunerdError` (the experiment failed) exits 1, each as one message without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            fail(str(exc), EXIT_USAGE)
        except TunerdError as exc:
            fail(str(exc), EXIT_FAILED)


class Exclusive(click.Option):
    """An option that declares the options it cannot go with (`excludes`) and those it needs (`requires`),
    by parameter name; click reports a breach as a usage error (exit 2) naming both flags."""

    def __init__(self, *args: Any, excludes: tuple[str, ...] = (), requires: tuple[str, ...] = (),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.excludes, self.requires = excludes, requires

    def handle_parse_result(self, ctx: click.Context, opts: Any, args: list[str]) -> Any:
        if self.name in opts and opts[self.name] not in (None, False):
            flags = {param.name: param.opts[0] for param in ctx.command.params}
            for other in self.excludes:
                if opts.get(other) not in (None, False):
                    raise click.UsageError(f"{self.opts[0]} and {flags[other]} cannot be used together", ctx)
            for other in self.requires:
                if opts.get(other) in (None, False):
                    raise click.UsageError(f"{self.opts[0]} goes with {flags[other]}", ctx)
        return super().handle_parse_result(ctx, opts, args)


# ----------------------------------------------------------------------------------------------------------
# Options, defined once


def _stack(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(command: Any) -> Any:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command
    return apply


storage_option = click.option("--storage", default=None, metavar="DIR",
                              help="Where experiments live (default: $TUNERD_STORAGE, the file's, ./tunerd-results).")
#: SPEC and the options that change how it is read: `validate` and `launch`
experiment_file = _stack(
    click.argument("spec", type=click.Path(dir_okay=False)),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override a key of the file (VALUE is YAML), e.g. search.num_samples=8."),
    click.option("--name", default=None, help="Experiment name (overrides the file's)."),
    storage_option,
)
#: the job server of `jobs`, `logs`, `stop`
job_server = click.option("--address", default=None, metavar="URL",
                          help="The cluster's job server, e.g. http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS, "
                               "then $RAY_ADDRESS).")


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """How a run goes (`launch`, `resume`): the flags, gathered into one `RunOptions` passed as `run`."""
    @functools.wraps(command)
    def with_options(*args: Any, address: str | None, shared_storage: bool, quiet: bool, json_lines: bool,
                     **kwargs: Any) -> Any:
        run = RunOptions(address=address, shared_storage=shared_storage, quiet=quiet, json_lines=json_lines)
        return command(*args, run=run, **kwargs)

    return _stack(
        click.option("--address", default=None, cls=Exclusive, excludes=("submit_to",),
                     help="Join a running Ray cluster (auto, HOST:PORT, or ray://HEAD:10001)."),
        click.option("--shared-storage", is_flag=True,
                     help="The storage folder is mounted at the same path on every node of the cluster."),
        click.option("--quiet", "-q", is_flag=True, help="No progress view; only the final result."),
        click.option("--json-lines", is_flag=True,
                     help="Progress as one JSON object per event on stdout (for scripts)."),
    )(with_options)


def _storage(storage: str | None) -> str:
    """The storage `--storage` (or $TUNERD_STORAGE) names; a path no folder can have is a usage error."""
    from tunerd.storage import resolve_storage

    try:
        return resolve_storage(storage)
    except ValueError as exc:
        raise UsageError(f"--storage: {exc}") from None


# ----------------------------------------------------------------------------------------------------------
# Running experiments: `validate`, `launch`, `resume`


@click.group(cls=TunerdGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tunerd")
def main() -> None:
    """tunerd: distributed hyperparameter tuning on Ray from one YAML file."""
    import logging

    logging.getLogger("ray").setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")


def _load(spec: str, overrides: tuple[str, ...], name: str | None, storage: str | None) -> Experiment:
    from tunerd import api

    experiment = api.load(spec, overrides, name=name, storage=storage)
    for warning in experiment.warnings:
        click.echo(f"warning: {warning}", err=True)
    return experiment


def _print_plan(experiment: Experiment) -> None:
    from tunerd import api

    for key, value in api.plan(experiment).items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for inner, described in value.items():
                click.echo(f"  {inner}: {described}")
        else:
            click.echo(f"{key}: {value}")


@main.command()
@experiment_file
def validate(spec: str, overrides: tuple[str, ...], name: str | None, storage: str | None) -> None:
    """Check an experiment file and print the resolved plan."""
    experiment = _load(spec, overrides, name, storage)
    click.echo(f"{spec}: ok")
    _print_plan(experiment)


@main.command()
@experiment_file
@run_options
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; run nothing.")
@click.option("--overwrite", is_flag=True, help="Replace an existing experiment of the same name.")
@click.option("--resume", is_flag=True, cls=Exclusive, excludes=("overwrite",),
              help="Continue the experiment of this name if it exists unfinished.")
@click.option("--submit", "submit_to", default=None, metavar="URL",
              help="Submit it as a Ray job to the cluster's job server (e.g. http://HEAD:8265) and return.")
@click.option("--follow", is_flag=True, cls=Exclusive, requires=("submit_to",),
              help="With --submit: stream the job's log until it ends; exit 0 SUCCEEDED, 1 FAILED, 130 STOPPED.")
@click.option("--python", "python", default=None, metavar="PATH", cls=Exclusive, requires=("submit_to",),
              help=f"With --submit: the cluster's Python (absolute; default: this one, {sys.executable}).")
def launch(spec: str, overrides: tuple[str, ...], name: str | None, storage: str | None, run: RunOptions,
           dry_run: bool, overwrite: bool, resume: bool, submit_to: str | None, follow: bool,
           python: str | None) -> None:
    """Run an experiment and print the best trial (or submit it to a cluster as a Ray job)."""
    from dataclasses import replace

    from tunerd import api

    experiment = _load(spec, overrides, name, storage)
    if submit_to is not None:
        _submit(experiment, spec, submit_to, storage=storage, overrides=overrides, name=name, overwrite=overwrite,
                quiet=run.quiet, shared_storage=run.shared_storage, python=python, dry_run=dry_run, follow=follow)
        return
    if dry_run:
        _print_plan(experiment)
        return
    if not run.json_lines:
        click.echo(f"tunerd: {experiment.name}: {experiment.trial_count} trials of {experiment.spec.trainable}, "
                   f"{experiment.algorithm_label} + {experiment.scheduler.name}, optimising "
                   f"{_goal_text(experiment.spec.goal())}")
        for line in experiment.warm_start.lines() if experiment.warm_start is not None else ():
            click.echo(f"tunerd: {line}")
    if resume and _exists(experiment):
        outcome = api.resume(experiment.name, storage=experiment.storage, run=run)
    else:
        outcome = api.launch(experiment, replace(run, overwrite=overwrite))
    _end(outcome, experiment.storage, json_lines=run.json_lines)


def _exists(experiment: Experiment) -> bool:
    from tunerd.storage import read_text

    return read_text(experiment.storage, f"{experiment.name}/summary.json") is not None


@main.command()
@click.argument("name")
@storage_option
@click.option("--extend", default=None, type=click.IntRange(min=1), metavar="N",
              help="Run N more trials, also on a finished experiment: the searcher goes on where it stopped.")
@run_options
def resume(name: str, storage: str | None, extend: int | None, run: RunOptions) -> None:
    """Finish the interrupted or crashed experiment NAME: finished trials are kept, the others continue
    from their last checkpoint. With --extend N, N more trials follow."""
    from tunerd import api

    root = _storage(storage)
    if not run.json_lines:
        click.echo(f"tunerd: resuming {name} from {root}" + (f", {extend} more trials" if extend else ""))
    _end(api.resume(name, storage=root, extend=extend or 0, run=run), root, json_lines=run.json_lines)


def _end(outcome: Any, storage: str, *, json_lines: bool = False) -> None:
    """Print how a run ended and exit with its status (SPEC §2)."""
    from tunerd.summary import ExperimentState

    summary = outcome.record.summary()
    if json_lines:
        document = summary.to_json()
        click.echo(json.dumps({"event": "end", "state": outcome.state, "where": outcome.where,
                               **{key: document.get(key) for key in ("best", "test", "counts", "error")}},
                              default=str))
    else:
        _print_outcome(summary, outcome.where)
    if outcome.state == ExperimentState.INTERRUPTED:
        click.echo(f"interrupted: the experiment's state is saved in {outcome.where}; continue it with:\n"
                   f"  tunerd resume {summary.name} --storage {storage}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if outcome.state != ExperimentState.FINISHED:
        fail(f"the experiment failed: {summary.error or 'every trial failed'}")


def _print_outcome(summary: Summary, folder: str, top: int = 5) -> None:
    from tunerd.display import config_text, score
    from tunerd.summary import TrialStatus

    metric = summary.metric
    ranked = [trial for trial in summary.ranked() if trial.value(metric) is not None]
    click.echo("")
    if summary.goal().is_multi:
        _print_front(summary, summary.goal())
    elif ranked:
        click.echo(f"top {min(top, len(ranked))} of {len(summary.trials)} trials by {metric}:")
        for rank, trial in enumerate(ranked[:top], 1):
            click.echo(f"  {rank}. trial {trial.trial_id}  {metric} {score(trial.value(metric))}  "
                       f"{trial.status:<8} {trial.epochs} epochs")
    click.echo("trials: " + ", ".join(f"{n} {status}" for status, n in summary.counts.items() if n))
    errored = [trial for trial in summary.trials if trial.status == TrialStatus.ERRORED]
    for trial in errored[:3]:
        where = f" (traceback: {folder.rstrip('/')}/{trial.error_file})" if trial.error_file else ""
        click.echo(f"  errored: trial {trial.trial_id}: {trial.error}{where}")
    if len(errored) > 3:
        click.echo(f"  ... and {len(errored) - 3} more errored trials (tunerd show NAME)")
    best = summary.best
    if best:
        click.echo(f"best config: {config_text(best.config)}")
        click.echo(f"best {metric}: {score(best.metric)} (trial {best.trial_id}, epoch {best.epoch})")
    test = summary.test
    if test:
        click.echo(f"test set: accuracy {score(test['test_accuracy'])}, loss {score(test['test_loss'])} "
                   f"({test['test_samples']} samples, never seen during the search)")
    click.echo(f"results: {folder}")
    click.echo(f"tensorboard: tensorboard --logdir {folder}")


# ----------------------------------------------------------------------------------------------------------
# Ray Jobs: `launch --submit`, `jobs`, `logs`, `stop` (tunerd.jobs does the work)


def _submit(experiment: Experiment, spec: str, url: str, *, follow: bool, **options: Any) -> None:
    from tunerd import jobs

    done = jobs.submit(experiment, spec, url, **options)
    if done.job_id is None:
        click.echo(f"would submit {experiment.name} to {done.url} (dry run: nothing was sent)")
    else:
        click.echo(f"tunerd: {experiment.name}: submitted to {done.url} as job {done.job_id}")
    click.echo(f"  ships: {', '.join(done.shipped)}")
    click.echo(f"  runs: {done.entrypoint}")
    click.echo(f"  results: {done.where} (on the cluster)")
    if done.job_id is None:
        return
    click.echo(f"follow it: tunerd logs {done.job_id} --address {done.url} --follow")
    click.echo(f"stop it:   tunerd stop {done.job_id} --address {done.url}")
    if follow:
        _follow(jobs.Jobs(done.url), done.job_id)


def _follow(client: Any, job_id: str) -> NoReturn:
    """Stream the job's log to the end and exit with its result (SUCCEEDED 0, FAILED 1, STOPPED 130)."""
    from tunerd import jobs

    try:
        info = client.follow(job_id, lambda chunk: click.echo(chunk, nl=False))
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; job {job_id} goes on (tunerd stop {job_id} --address {client.url} "
                   "stops it)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    code = jobs.exit_code(info)
    click.echo(f"job {job_id}: {info.status}" + (f" ({info.message})" if code and info.message else ""),
               err=code != 0)
    sys.exit(code)


@main.command("jobs")
@job_server
def jobs_command(address: str | None) -> None:
    """List the cluster's jobs: id, status, start time, experiment (or entrypoint)."""
    from tunerd.jobs import Jobs

    client = Jobs(address)
    rows = client.list_jobs()
    if not rows:
        click.echo(f"no jobs at {client.url}")
        return
    width = max(len(row.job_id) for row in rows)
    click.echo(f"{'JOB':<{width}}  {'STATUS':<9}  {'STARTED':<19}  EXPERIMENT")
    for row in rows:
        click.echo(f"{row.job_id:<{width}}  {row.status:<9}  {row.started:<19}  {row.what}")


@main.command()
@click.argument("job")
@job_server
@click.option("--follow", "-f", is_flag=True,
              help="Stream until the job ends; exit 0 SUCCEEDED, 1 FAILED, 130 STOPPED.")
def logs(job: str, address: str | None, follow: bool) -> None:
    """Print a job's log (its driver's output: `tunerd launch` on the cluster)."""
    from tunerd.jobs import Jobs

    client = Jobs(address)
    if follow:
        _follow(client, job)
    click.echo(client.logs(job), nl=False)


@main.command()
@click.argument("job")
@job_server
@click.option("--wait", "wait_s", default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the job to end.")
def stop(job: str, address: str | None, wait_s: float) -> None:
    """Stop a job: tunerd's own get Ctrl-C (the experiment is saved as interrupted), others SIGTERM."""
    from tunerd.jobs import Jobs

    client = Jobs(address)
    was_running, info = client.stop(job, wait_s=wait_s)
    status = str(info.status)
    if status in ("SUCCEEDED", "FAILED", "STOPPED"):
        click.echo(f"job {job}: {status}" if was_running else f"job {job} had already ended: {status}")
    else:
        fail(f"job {job}: stop requested, still {status} after {wait_s:g} s (tunerd jobs --address {client.url} "
             "shows when it ends)")


# ----------------------------------------------------------------------------------------------------------
# Reading experiments from disk: `status`, `show` (tunerd.report does the work; no Ray needed)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


@main.command()
@storage_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per experiment, one per line.")
def status(storage: str | None, as_json: bool) -> None:
    """One line per experiment in the storage: state, trials done, best metric, started, duration."""
    from tunerd import report
    from tunerd.display import score

    root = _storage(storage)
    rows = report.status(root)
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_dict()))
        return
    if not rows:
        click.echo(f"no experiments in {root}")
        return
    width = max(len(row.name) for row in rows)
    click.echo(f"{'experiment':<{width}}  {'state':<11}  {'trials':>9}  {'best':<26}  {'started':<19}  duration")
    for row in rows:
        best = f"{row.metric} {score(row.best)}" if row.best is not None else "-"
        started = (row.started or "-").replace("T", " ")[:19]
        trials = f"{row.done}/{row.total}" if row.error is None else "-"
        click.echo(f"{row.name:<{width}}  {row.state:<11}  {trials:>9}  {best:<26}  "
                   f"{started:<19}  {_duration(row.duration_s)}")
    for row in rows:
        if row.error is not None:
            click.echo(f"error: {row.error}", err=True)


@main.command()
@click.argument("name")
@storage_option
@click.option("--top", default=10, show_default=True, type=click.IntRange(min=1), help="Leaderboard rows.")
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@click.option("--plot", "plot_to", default=None, metavar="FILE.png",
              help="Also draw learning curves and the metric against each searched hyperparameter.")
def show(name: str, storage: str | None, top: int, as_json: bool, plot_to: str | None) -> None:
    """Leaderboard, best config, test score and a diagnosis of every trial of experiment NAME."""
    from tunerd import report

    root = _storage(storage)
    shown = report.show(root, name, top=top)
    if plot_to:
        from tunerd.plots import plot_experiment

        shown.plot = str(plot_experiment(shown, report.read_spec(root, name), plot_to))
    if as_json:
        click.echo(json.dumps(shown.to_json(history=False), indent=2))
        return
    _print_show(shown)


def _varying_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The (flattened) config keys whose values differ between trials: what the search decided."""
    from tunerd.space import flatten

    flat = [flatten(config) for config in configs]
    keys = sorted({key for config in flat for key in config})
    return [key for key in keys if len({json.dumps(config.get(key), sort_keys=True) for config in flat}) > 1]


def _print_show(shown: Shown) -> None:
    from tunerd.display import config_text, number, score
    from tunerd.space import flatten

    summary, metric = shown.summary, shown.summary.metric
    goal = summary.goal()
    counts = summary.counts
    searched = summary.algorithm or {}
    by = f" by {'auto -> ' if searched.get('chosen_by') else ''}{searched['name']}" if searched.get("name") else ""
    click.echo(f"{summary.name}: {shown.state}, {sum(counts.values())} of {summary.trial_count} trials "
               f"({', '.join(f'{n} {k}' for k, n in counts.items() if n)}), optimising {_goal_text(goal)}{by}")
    click.echo("")
    varying = _varying_keys([row.trial.config or {} for row in shown.trials])
    front = set(summary.pareto or ())
    marks = (["front"] if goal.is_multi else []) + (["feasible"] if goal.constraints else [])
    click.echo(f"{'rank':>4}  {'trial':<11}  {'status':<9}  {'epochs':>6}  "
               + "".join(f"{m:>12}  " for m in goal.metrics) + "".join(f"{m:<8}  " for m in marks)
               + "searched config")
    for row in shown.leaderboard:
        flat = flatten(row.trial.config or {})
        config = " ".join(f"{key}={number(flat.get(key))}" for key in varying)
        flags = {"front": "*" if row.trial.trial_id in front else "",
                 "feasible": {True: "yes", False: "no", None: "-"}[row.trial.feasible]}
        click.echo(f"{row.rank or '-':>4}  {row.trial.trial_id:<11}  {row.trial.status:<9}  {row.trial.epochs:>6}  "
                   + "".join(f"{score(row.trial.value(m)):>12}  " for m in goal.metrics)
                   + "".join(f"{flags[m]:<8}  " for m in marks) + config)
    if goal.is_multi:
        _print_front(summary, goal)
    best, test = summary.best, summary.test
    if best:
        click.echo("")
        feasible = next((t.feasible for t in summary.trials if t.trial_id == best.trial_id), True)
        if feasible is False:
            click.echo("no trial met the constraints: best is the one closest to them")
        picked = f" (select: {metric})" if goal.is_multi else ""
        click.echo(f"best{picked}: trial {best.trial_id}, {metric} {score(best.metric)} at epoch {best.epoch}")
        click.echo(f"best config: {config_text(best.config)}")
    if test:
        click.echo("test set: " + ", ".join(f"{key.removeprefix('test_')} {score(value)}"
                                            for key, value in test.items()))
    findings = [(row.trial.trial_id, line) for row in shown.trials for line in row.diagnosis]
    click.echo("")
    click.echo("diagnosis:" if findings else "diagnosis: nothing to report (no overfitting, underfitting, "
               "divergence, early stop or error)")
    for trial_id, line in findings:
        click.echo(f"  trial {trial_id}: {line}")
    if shown.plot:
        click.echo(f"plot: {shown.plot}")


def _goal_text(goal: Any) -> str:
    """`val_accuracy (max), latency_ms (min) with params <= 200000`: what an experiment optimises."""
    text = ", ".join(f"{o.metric} ({o.mode})" for o in goal.objectives)
    return text + (f" with {', '.join(c.describe() for c in goal.constraints)}" if goal.constraints else "")


def _print_front(summary: Summary, goal: Any) -> None:
    """The Pareto front, best `select` objective first: the trade-offs to choose from."""
    from tunerd.display import config_text, score

    trials = {t.trial_id: t for t in summary.trials}
    front = sorted((trials[i] for i in summary.pareto or () if i in trials),
                   key=lambda t: goal.report_key(t.best) or ())
    click.echo("")
    click.echo(f"Pareto front: {len(front)} trial{'s' if len(front) != 1 else ''} no feasible trial beats on every "
               f"objective (tunerd export {summary.name} --trial ID exports any of them)")
    for trial in front:
        values = ", ".join(f"{m} {score(trial.value(m))}" for m in goal.metrics)
        click.echo(f"  trial {trial.trial_id}: {values}  {config_text(trial.config)}")


@main.command()
@click.argument("name")
@storage_option
@click.option("--json", "as_json", is_flag=True, help="Everything as one JSON object.")
@click.option("--plot", "plot_to", default=None, metavar="FILE.png",
              help="Also draw the importances (and with ASHA, per rung) as bars.")
@click.option("--write", "write_to", default=None, metavar="NEXT.yaml",
              help="Write the next experiment file: ranges narrowed, unimportant knobs fixed, a comment per change.")
@click.option("--overwrite", is_flag=True, cls=Exclusive, requires=("write_to",),
              help="With --write: replace NEXT.yaml if it exists.")
def analyze(name: str, storage: str | None, as_json: bool, plot_to: str | None, write_to: str | None,
            overwrite: bool) -> None:
    """Which hyperparameters of experiment NAME mattered (fANOVA; with ASHA per rung too), where the best
    trials are, which bounds they crowd; and with --write, the next experiment file."""
    from tunerd.analysis import analyze as analyze_experiment

    analysis = analyze_experiment(name, _storage(storage))
    if write_to:
        from tunerd.nextfile import write_next

        analysis.written = str(write_next(analysis, write_to, overwrite=overwrite))
    if plot_to:
        from tunerd.plots import plot_importance

        analysis.plot = str(plot_importance(analysis, plot_to))
    if as_json:
        click.echo(json.dumps(analysis.to_json(), indent=2))
        return
    _print_analysis(analysis)


def _print_analysis(analysis: Any) -> None:
    from tunerd.display import number

    left = ", ".join(f"{n} {reason}" for reason, n in analysis.left_out.items())
    goal = ", ".join(f"{o['metric']} ({o['mode']})" for o in analysis.objectives)
    click.echo(f"{analysis.name}: {analysis.used} trials analysed{f' ({left}: left out)' if left else ''}, "
               f"optimising {goal}")
    width = max(len(label) for label in analysis.nodes)
    for found in (*analysis.importance, *analysis.branches):
        where = "" if found.scope == "all trials" else f", trials where {found.scope}"
        click.echo(f"\nimportance for {found.objective} (fANOVA over {found.trials} trials{where}):")
        for label, share in (found.values or {}).items():
            click.echo(f"  {label:<{width}}  {share:5.3f}  {'#' * round(share * 40)}")
        if found.note:
            click.echo(f"  {found.note}")
    if analysis.rungs:
        rungs = sorted({r.epoch for r in analysis.rungs})
        for metric in (o["metric"] for o in analysis.objectives):
            at = {r.epoch: r for r in analysis.rungs if r.objective == metric}
            click.echo(f"\nper ASHA rung ({metric} at that epoch; trials that reached it):")
            click.echo(f"  {'':<{width}}  " + "".join(f"{f'epoch {e}':>10}" for e in rungs))
            click.echo(f"  {'trials':<{width}}  " + "".join(f"{at[e].trials:>10}" for e in rungs))
            for label in analysis.nodes:
                shares = [at[e].values.get(label) if at[e].values else None for e in rungs]
                if any(share is not None for share in shares):
                    click.echo(f"  {label:<{width}}  " + "".join(
                        f"{'-' if share is None else f'{share:.3f}':>10}" for share in shares))
    click.echo(f"\nbest region (the best {max(r.top for r in analysis.regions.values())} trials):")
    for label, region in analysis.regions.items():
        where = (f"{number(region.low)} to {number(region.high)}" if region.options is None
                 else ", ".join(f"{option} x{n}" for option, n in region.options.items()))
        click.echo(f"  {label:<{width}}  {where:<28}  best {number(region.best)}")
    click.echo("")
    click.echo("warnings:" if analysis.warnings else "warnings: none (no best trials crowd a bound)")
    for warning in analysis.warnings:
        click.echo(f"  {warning.message}")
    if analysis.written:
        click.echo(f"next experiment: {analysis.written} (tunerd validate {analysis.written})")
    if analysis.plot:
        click.echo(f"plot: {analysis.plot}")


@main.command("export")
@click.argument("name")
@click.option("--trial", "trial_id", required=True, metavar="ID",
              help="The trial to export (tunerd show NAME lists them).")
@click.option("--to", "dest", default=None, metavar="DIR",
              help="Where to write it (default: the experiment's exports/trial_ID/).")
@storage_option
def export_command(name: str, trial_id: str, dest: str | None, storage: str | None) -> None:
    """Export trial ID's model as best/ is exported (its best checkpoint; a built-in's model.pt and
    model.json, scored on the test split): any point of a Pareto front, not only best/."""
    from tunerd.display import score
    from tunerd.exports import export_trial

    done = export_trial(_storage(storage), name, trial_id, dest)
    click.echo(f"exported trial {done.trial_id} ({done.checkpoint}) to {done.folder}")
    if done.test:
        click.echo(f"test set: accuracy {score(done.test['test_accuracy'])}, loss {score(done.test['test_loss'])} "
                   f"({done.test['test_samples']} samples)")
    if done.export:
        click.echo(f"int8 copy: accuracy {score(done.export['accuracy_after'])}, "
                   f"{done.export['size_bytes_after']} bytes (float: {done.export['size_bytes_before']})")


@main.command("tensorboard")
@click.argument("name", required=False)
@storage_option
@click.option("--port", default=6006, show_default=True, type=click.IntRange(0, 65535))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Where TensorBoard listens (0.0.0.0 to reach it from other machines).")
def tensorboard_command(name: str | None, storage: str | None, port: int, host: str) -> None:
    """Start TensorBoard on experiment NAME, or on every experiment of the storage (scalars and HParams,
    live while trials run)."""
    from tunerd import report
    from tunerd.storage import is_uri

    root = _storage(storage)
    if name:
        report.read_summary(root, name)  # an unknown name: a clear error, not an empty TensorBoard
    logdir = (f"{root.rstrip('/')}/{name}" if is_uri(root) else os.path.join(root, name)) if name else root
    click.echo(f"tensorboard: {logdir} on http://{host}:{port}/ (Ctrl-C stops it)")
    sys.stdout.flush()
    # become TensorBoard (no child left behind when this process is stopped)
    os.execv(sys.executable, [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", str(port),
                              "--host", host])


if __name__ == "__main__":
    main()
