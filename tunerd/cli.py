"""The `tunerd` command line: parses and prints; the work is done by `tunerd.api`.

Exit status (SPEC §2): 0 done, 1 the experiment failed, 2 bad usage or a bad file, 130 interrupted.
"""
from __future__ import annotations

import json
import logging
import os
import sys
from typing import Any, NoReturn

import click

from tunerd import api
from tunerd.errors import TunerdError, UsageError
from tunerd.progress import short_id
from tunerd.space import flatten
from tunerd.spec import Experiment

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def _fail(exc: Exception) -> NoReturn:
    code = EXIT_USAGE if isinstance(exc, UsageError) else EXIT_FAILED
    click.echo(f"error: {exc}" if "\n" not in str(exc) else f"error:\n{exc}", err=True)
    sys.exit(code)


def _load(spec: str, overrides: tuple[str, ...], name: str | None, storage: str | None) -> Experiment:
    try:
        return api.load(spec, overrides, name=name, storage=storage)
    except TunerdError as exc:
        _fail(exc)


def _print_plan(plan: dict[str, Any]) -> None:
    for key, value in plan.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for inner, described in value.items():
                click.echo(f"  {inner}: {described}")
        else:
            click.echo(f"{key}: {value}")


spec_argument = click.argument("spec", type=click.Path(dir_okay=False))
set_option = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                          help="Override a key of the file (VALUE is YAML), e.g. search.num_samples=8.")
name_option = click.option("--name", default=None, help="Experiment name (overrides the file's).")
json_lines_option = click.option("--json-lines", is_flag=True,
                                 help="Progress as one JSON object per event on stdout (for scripts).")
storage_option = click.option("--storage", default=None, metavar="DIR",
                              help="Where experiments live (default: $TUNERD_STORAGE, the file's, ./tunerd-results).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tunerd")
def main() -> None:
    """tunerd: distributed hyperparameter tuning on Ray from one YAML file."""
    logging.getLogger("ray").setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@main.command()
@spec_argument
@set_option
@name_option
@storage_option
def validate(spec: str, overrides: tuple[str, ...], name: str | None, storage: str | None) -> None:
    """Check an experiment file and print the resolved plan."""
    experiment = _load(spec, overrides, name, storage)
    click.echo(f"{spec}: ok")
    _print_plan(api.plan(experiment))


@main.command()
@spec_argument
@set_option
@name_option
@storage_option
@click.option("--address", default=None, help="Join a running Ray cluster (e.g. auto, HOST:PORT).")
@click.option("--shared-storage", is_flag=True,
              help="The storage folder is mounted at the same path on every node of the cluster.")
@click.option("--dry-run", is_flag=True, help="Validate and print the plan; run nothing.")
@click.option("--overwrite", is_flag=True, help="Replace an existing experiment of the same name.")
@click.option("--resume", is_flag=True, help="Continue the experiment of this name if it exists unfinished.")
@click.option("--quiet", "-q", is_flag=True, help="No progress view; only the final result.")
@json_lines_option
@click.option("--submit", "submit_to", default=None, metavar="URL",
              help="Submit it as a Ray job to the cluster's job server (e.g. http://HEAD:8265) and return.")
@click.option("--follow", is_flag=True,
              help="With --submit: stream the job's log until it ends; exit 0 SUCCEEDED, 1 FAILED, 130 STOPPED.")
@click.option("--python", "python", default=None, metavar="PATH",
              help="With --submit: the cluster's Python (absolute; default: this one, "
                   f"{sys.executable}).")
def launch(spec: str, overrides: tuple[str, ...], name: str | None, storage: str | None, address: str | None,
           shared_storage: bool, dry_run: bool, overwrite: bool, resume: bool, quiet: bool, json_lines: bool,
           submit_to: str | None, follow: bool, python: str | None) -> None:
    """Run an experiment and print the best trial (or submit it to a cluster as a Ray job)."""
    if submit_to is not None or follow or python:
        _check_submit_options(submit_to, follow, python, address)
    experiment = _load(spec, overrides, name, storage)
    if submit_to is not None:
        _submit(experiment, spec, submit_to, storage=storage, overrides=overrides, name=name, overwrite=overwrite,
                quiet=quiet, shared_storage=shared_storage, python=python, dry_run=dry_run, follow=follow)
        return
    if dry_run:
        _print_plan(api.plan(experiment))
        return
    if resume and overwrite:
        _fail(UsageError("--resume continues an experiment, --overwrite replaces it: pass one of them"))
    if not json_lines:
        click.echo(f"tunerd: {experiment.name}: {experiment.trial_count} trials of {experiment.spec.trainable}, "
                   f"{experiment.spec.search.algorithm} + {experiment.spec.scheduler.name}, optimising "
                   f"{experiment.spec.metric} ({experiment.spec.mode})")
    try:
        if resume and _exists(experiment):
            outcome = api.resume(experiment.name, storage=experiment.storage, address=address, quiet=quiet,
                                 shared_storage=shared_storage, json_lines=json_lines)
        else:
            outcome = api.launch(experiment, address=address, overwrite=overwrite, quiet=quiet,
                                 shared_storage=shared_storage, json_lines=json_lines)
    except TunerdError as exc:
        _fail(exc)
    _end(outcome, experiment.storage, json_lines=json_lines)


def _exists(experiment: Experiment) -> bool:
    from tunerd.storage import read_text

    return read_text(experiment.storage, f"{experiment.name}/summary.json") is not None


def _end(outcome: Any, storage: str, *, json_lines: bool = False) -> NoReturn | None:
    """Print how a run ended and exit with its status (SPEC §2)."""
    summary = outcome.summary
    if json_lines:
        click.echo(json.dumps({"event": "end", "state": outcome.state, "where": outcome.where,
                               "best": summary.get("best"), "test": summary.get("test"),
                               "counts": summary.get("counts"), "error": summary.get("error")}, default=str))
    else:
        _print_outcome(summary, outcome.where)
    if outcome.state == "interrupted":
        click.echo(f"interrupted: the experiment's state is saved in {outcome.where}; continue it with:\n"
                   f"  tunerd resume {outcome.record.name} --storage {storage}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if outcome.state != "finished":
        click.echo(f"error: the experiment failed: {outcome.summary.get('error', 'every trial failed')}", err=True)
        sys.exit(EXIT_FAILED)
    return None


@main.command()
@click.argument("name")
@storage_option
@click.option("--address", default=None, help="Join a running Ray cluster (e.g. auto, HOST:PORT).")
@click.option("--shared-storage", is_flag=True,
              help="The storage folder is mounted at the same path on every node of the cluster.")
@click.option("--quiet", "-q", is_flag=True, help="No progress view; only the final result.")
@json_lines_option
def resume(name: str, storage: str | None, address: str | None, shared_storage: bool, quiet: bool,
           json_lines: bool) -> None:
    """Finish the interrupted or crashed experiment NAME: finished trials are kept, the others continue
    from their last checkpoint."""
    root = _storage(storage)
    if not json_lines:
        click.echo(f"tunerd: resuming {name} from {root}")
    try:
        outcome = api.resume(name, storage=root, address=address, quiet=quiet, shared_storage=shared_storage,
                             json_lines=json_lines)
    except TunerdError as exc:
        _fail(exc)
    _end(outcome, root, json_lines=json_lines)


def _print_outcome(summary: dict[str, Any], folder: str, top: int = 5) -> None:
    metric = summary["metric"]
    trials = [t for t in summary["trials"] if t["best"]]
    trials.sort(key=lambda t: t["best"][metric], reverse=summary["mode"] == "max")
    click.echo("")
    if trials:
        click.echo(f"top {min(top, len(trials))} of {len(summary['trials'])} trials by {metric}:")
        for rank, trial in enumerate(trials[:top], 1):
            click.echo(f"  {rank}. trial {short_id(trial['trial_id'])}  {metric} {trial['best'][metric]:.4f}  "
                       f"{trial['status']:<8} {trial['epochs']} epochs")
    counts = summary.get("counts") or {}
    click.echo("trials: " + ", ".join(f"{n} {status}" for status, n in counts.items() if n))
    errored = [t for t in summary["trials"] if t["status"] == "errored"]
    for trial in errored[:3]:
        where = f" (traceback: {folder.rstrip('/')}/{trial['error_file']})" if trial.get("error_file") else ""
        click.echo(f"  errored: trial {short_id(trial['trial_id'])}: {trial.get('error')}{where}")
    if len(errored) > 3:
        click.echo(f"  ... and {len(errored) - 3} more errored trials (tunerd show NAME)")
    best = summary.get("best")
    if best:
        click.echo(f"best config: {json.dumps(best['config'], sort_keys=True)}")
        click.echo(f"best {metric}: {best['metric']:.4f} (trial {short_id(best['trial_id'])}, epoch {best['epoch']})")
    test = summary.get("test")
    if test:
        click.echo(f"test set: accuracy {test['test_accuracy']:.4f}, loss {test['test_loss']:.4f} "
                   f"({test['test_samples']} samples, never seen during the search)")
    click.echo(f"results: {folder}")
    click.echo(f"tensorboard: tensorboard --logdir {folder}")


# ----------------------------------------------------------------------------------------------------------
# Ray Jobs: `launch --submit`, `jobs`, `logs`, `stop` (tunerd.jobs does the work)

address_option = click.option("--address", default=None, metavar="URL",
                              help="The cluster's job server, e.g. http://HEAD:8265 (default: "
                                   "$RAY_API_SERVER_ADDRESS, then $RAY_ADDRESS).")


def _check_submit_options(submit_to: str | None, follow: bool, python: str | None, address: str | None) -> None:
    if submit_to is None:
        _fail(UsageError(f"{'--follow' if follow else '--python'} goes with --submit URL"))
    if address is not None:
        _fail(UsageError("--submit runs the experiment on the cluster (it joins it there with --address auto); "
                         "--address joins a cluster from here: give one of them"))


def _submit(experiment: Experiment, spec: str, url: str, *, follow: bool, **options: Any) -> None:
    from tunerd import jobs

    try:
        done = jobs.submit(experiment, spec, url, **options)
    except TunerdError as exc:
        _fail(exc)
    if done.job_id is None:
        click.echo(f"would submit {experiment.name} to {done.url} (dry run: nothing was sent)")
        click.echo(f"  ships: {', '.join(done.shipped)}")
        click.echo(f"  runs: {done.entrypoint}")
        click.echo(f"  results: {done.where} (on the cluster)")
        return
    click.echo(f"tunerd: {experiment.name}: submitted to {done.url} as job {done.job_id}")
    click.echo(f"  ships: {', '.join(done.shipped)}")
    click.echo(f"  runs: {done.entrypoint}")
    click.echo(f"  results: {done.where} (on the cluster)")
    click.echo(f"follow it: tunerd logs {done.job_id} --address {done.url} --follow")
    click.echo(f"stop it:   tunerd stop {done.job_id} --address {done.url}")
    if follow:
        _follow(jobs.Jobs(done.url), done.job_id)


def _connect(address: str | None) -> Any:
    from tunerd import jobs

    try:
        return jobs.Jobs(address)
    except TunerdError as exc:
        _fail(exc)


def _follow(client: Any, job_id: str) -> NoReturn:
    """Stream the job's log to the end and exit with its result (SUCCEEDED 0, FAILED 1, STOPPED 130)."""
    from tunerd import jobs

    try:
        info = client.follow(job_id, lambda chunk: click.echo(chunk, nl=False))
    except KeyboardInterrupt:
        click.echo(f"\nstopped following; job {job_id} goes on (tunerd stop {job_id} --address {client.url} "
                   "stops it)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except TunerdError as exc:
        _fail(exc)
    code = jobs.exit_code(info)
    click.echo(f"job {job_id}: {info.status}" + (f" ({info.message})" if code and info.message else ""),
               err=code != 0)
    sys.exit(code)


@main.command("jobs")
@address_option
def jobs_command(address: str | None) -> None:
    """List the cluster's jobs: id, status, start time, experiment (or entrypoint)."""
    client = _connect(address)
    try:
        rows = client.list_jobs()
    except TunerdError as exc:
        _fail(exc)
    if not rows:
        click.echo(f"no jobs at {client.url}")
        return
    width = max(len(row.job_id) for row in rows)
    click.echo(f"{'JOB':<{width}}  {'STATUS':<9}  {'STARTED':<19}  EXPERIMENT")
    for row in rows:
        click.echo(f"{row.job_id:<{width}}  {row.status:<9}  {row.started:<19}  {row.what}")


@main.command()
@click.argument("job")
@address_option
@click.option("--follow", "-f", is_flag=True,
              help="Stream until the job ends; exit 0 SUCCEEDED, 1 FAILED, 130 STOPPED.")
def logs(job: str, address: str | None, follow: bool) -> None:
    """Print a job's log (its driver's output: `tunerd launch` on the cluster)."""
    client = _connect(address)
    if follow:
        _follow(client, job)
    try:
        click.echo(client.logs(job), nl=False)
    except TunerdError as exc:
        _fail(exc)


@main.command()
@click.argument("job")
@address_option
@click.option("--wait", "wait_s", default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the job to end.")
def stop(job: str, address: str | None, wait_s: float) -> None:
    """Stop a job: tunerd's own get Ctrl-C (the experiment is saved as interrupted), others SIGTERM."""
    client = _connect(address)
    try:
        was_running, info = client.stop(job, wait_s=wait_s)
    except TunerdError as exc:
        _fail(exc)
    status = str(info.status)
    if status in ("SUCCEEDED", "FAILED", "STOPPED"):
        click.echo(f"job {job}: {status}" if was_running else f"job {job} had already ended: {status}")
    else:
        click.echo(f"job {job}: stop requested, still {status} after {wait_s:g} s "
                   f"(tunerd jobs --address {client.url} shows when it ends)", err=True)
        sys.exit(EXIT_FAILED)


# ----------------------------------------------------------------------------------------------------------
# Reading experiments from disk: `status`, `show` (tunerd.report does the work; no Ray needed)

def _storage(storage: str | None) -> str:
    """The storage `--storage` (or $TUNERD_STORAGE) names; a path no folder can have exits 2."""
    from tunerd.spec import resolve_storage

    try:
        return resolve_storage(storage, None)
    except ValueError as exc:
        _fail(UsageError(f"--storage: {exc}"))


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

    root = _storage(storage)
    try:
        rows = report.status(root)
    except TunerdError as exc:
        _fail(exc)
    if as_json:
        for row in rows:
            click.echo(json.dumps(report.as_dict(row)))
        return
    if not rows:
        click.echo(f"no experiments in {root}")
        return
    width = max(len(row.name) for row in rows)
    click.echo(f"{'experiment':<{width}}  {'state':<11}  {'trials':>9}  {'best':<26}  {'started':<19}  duration")
    for row in rows:
        best = f"{row.metric} {row.best:.4f}" if isinstance(row.best, (int, float)) else "-"
        started = (row.started or "-").replace("T", " ")[:19]
        click.echo(f"{row.name:<{width}}  {row.state:<11}  {f'{row.done}/{row.total}':>9}  {best:<26}  "
                   f"{started:<19}  {_duration(row.duration_s)}")


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
    try:
        shown = report.show(root, name, top=top)
    except TunerdError as exc:
        _fail(exc)
    if plot_to:
        from tunerd.plots import plot_experiment

        shown["plot"] = str(plot_experiment(shown, report.read_spec(root, name), plot_to))
    if as_json:
        click.echo(json.dumps({k: v for k, v in shown.items() if k != "trials"} |
                              {"trials": [{k: v for k, v in t.items() if k != "history"} for t in shown["trials"]]},
                              indent=2))
        return
    _print_show(shown)


def _varying_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The (flattened) config keys whose values differ between trials: what the search decided."""
    flat = [flatten(config) for config in configs]
    keys = sorted({key for config in flat for key in config})
    return [key for key in keys if len({json.dumps(config.get(key), sort_keys=True) for config in flat}) > 1]


def _print_show(shown: dict[str, Any]) -> None:
    metric, counts = shown["metric"], shown.get("counts") or {}
    click.echo(f"{shown['name']}: {shown['state']}, {sum(counts.values())} of {shown['trial_count']} trials "
               f"({', '.join(f'{n} {k}' for k, n in counts.items() if n)}), optimising {metric} ({shown['mode']})")
    click.echo("")
    varying = _varying_keys([t["config"] or {} for t in shown["trials"]])
    click.echo(f"{'rank':>4}  {'trial':<11}  {'status':<9}  {'epochs':>6}  {metric:>12}  searched config")
    for trial in shown["leaderboard"]:
        value = trial.get(metric)
        shown_value = f"{value:.4f}" if isinstance(value, (int, float)) else "-"
        flat = flatten(trial["config"] or {})
        config = " ".join(f"{key}={flat.get(key)}" for key in varying)
        click.echo(f"{trial['rank'] or '-':>4}  {trial['trial_id']:<11}  {trial['status'] or '-':<9}  "
                   f"{trial['epochs'] or 0:>6}  {shown_value:>12}  {config}")
    best, test = shown.get("best"), shown.get("test")
    if best:
        click.echo("")
        click.echo(f"best: trial {best['trial_id']}, {metric} {best['metric']:.4f} at epoch {best.get('epoch')}")
        click.echo(f"best config: {json.dumps(best['config'], sort_keys=True)}")
    if test:
        click.echo("test set: " + ", ".join(f"{k.removeprefix('test_')} {v:.4f}" if isinstance(v, float) else
                                            f"{k.removeprefix('test_')} {v}" for k, v in test.items()))
    findings = [(t["trial_id"], line) for t in shown["trials"] for line in t["diagnosis"]]
    click.echo("")
    click.echo("diagnosis:" if findings else "diagnosis: nothing to report (no overfitting, underfitting, "
               "divergence, early stop or error)")
    for trial_id, line in findings:
        click.echo(f"  trial {trial_id}: {line}")
    if shown.get("plot"):
        click.echo(f"plot: {shown['plot']}")


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
        try:
            report.read_summary(root, name)  # an unknown name: a clear error, not an empty TensorBoard
        except TunerdError as exc:
            _fail(exc)
    logdir = (f"{root.rstrip('/')}/{name}" if is_uri(root) else os.path.join(root, name)) if name else root
    click.echo(f"tensorboard: {logdir} on http://{host}:{port}/ (Ctrl-C stops it)")
    sys.stdout.flush()
    # become TensorBoard (no child left behind when this process is stopped)
    os.execv(sys.executable, [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", str(port),
                              "--host", host])


if __name__ == "__main__":
    main()
