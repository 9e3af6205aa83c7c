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
@click.option("--quiet", "-q", is_flag=True, help="No progress view; only the final result.")
def launch(spec: str, overrides: tuple[str, ...], name: str | None, storage: str | None, address: str | None,
           shared_storage: bool, dry_run: bool, overwrite: bool, quiet: bool) -> None:
    """Run an experiment and print the best trial."""
    experiment = _load(spec, overrides, name, storage)
    if dry_run:
        _print_plan(api.plan(experiment))
        return
    click.echo(f"tunerd: {experiment.name}: {experiment.trial_count} trials of {experiment.spec.trainable}, "
               f"{experiment.spec.search.algorithm} + {experiment.spec.scheduler.name}, optimising "
               f"{experiment.spec.metric} ({experiment.spec.mode})")
    try:
        outcome = api.launch(experiment, address=address, overwrite=overwrite, quiet=quiet,
                             shared_storage=shared_storage)
    except TunerdError as exc:
        _fail(exc)
    _print_outcome(outcome.summary, str(outcome.folder))
    if outcome.state == "interrupted":
        click.echo(f"interrupted: the experiment's state is saved in {outcome.folder} "
                   "(Ray Tune's Tuner.restore can continue it)", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if outcome.state != "finished":
        click.echo(f"error: the experiment failed: {outcome.summary.get('error', 'every trial failed')}", err=True)
        sys.exit(EXIT_FAILED)


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


if __name__ == "__main__":
    main()
