"""Utilisation: how much of the trial slots' time a real ASHA experiment spends training and validating.

One experiment through tunerd's Python API, as `tunerd launch` runs it (progress view on, to /dev/null): the
built-in `cnn` on `mnist` (5,000 digits, 28x28; 3,000 train / 1,000 val) with a Keras-style conv stack
(conv 64 -> conv 128, 3x3, dense 128), searching lr, optimizer, batch size and dropout; 24 trials of random
search + ASHA (grace 1 epoch, reduction 3, at most 9 epochs: rungs at 1 and 3), 1 CPU per trial, a
checkpoint every epoch (2 kept), TensorBoard on. About 2-3 minutes on the 2-core machine.

    utilisation = sum over trials of the seconds spent inside their epochs / (Tuner.fit's wall time x slots)

- Seconds inside an epoch: `trainables.loop.run_epoch` (every learner trains one epoch, then is scored on
  the validation split), timed with `time.perf_counter` in the trial's process around each call. For that,
  the trials run `timed_train_builtin`: the built-in trainable exactly as tunerd runs it (same function,
  same context, same resources), with `run_epoch` wrapped in that process to add the time to the epoch's
  report, with running totals per trial (`bench_epoch_s_total`; `bench_startup_s`: from the trial's start
  to its first epoch; `bench_between_s_total`: between its epochs, i.e. the checkpoint, the report and
  Tune's round trip). Ray's own `time_this_iter_s` is not used: it is the time between two reports, so it
  also holds the checkpoint written before each report, Tune's round trip and, for epoch 1, the trial's
  whole start (data, model, and in a new process PyTorch's first optimizer, which imports torch._dynamo:
  ~2.5 s), which is overhead, not work. (A new process's first epoch is itself ~1-2 s slower than the
  next: PyTorch's kernels warming up inside `run_epoch`; it is counted as epoch time.)
- A trial that ASHA stops does not train past its last report (a function trainable blocks in each report
  until Tune asks for the next result), so every epoch trained is reported and counted, and nothing
  outside an epoch is.
- Tuner.fit's wall time: `tune.Tuner.fit` is wrapped for the run to read `time.monotonic()` just before and
  after the call tunerd makes; what tunerd does before (spec, searcher) and after (export of the winner,
  test-set score) is outside, as it is outside the trial slots. Ray's start is before and outside too;
  the trial processes (actors) are started inside, and their start is counted against utilisation.
- Slots: the Ray's CPUs / 1 CPU per trial (2 on the 2-core machine).
- Where the rest went (printed and in the JSON, shares of fit wall x slots): the trials' start-up (mostly
  the first trial of each of the 2 processes), between epochs, and elsewhere: starting the 2 trial
  processes (Ray's worker, `import ray.tune`, torch and scikit-learn: ~5 s each), the moves from one trial
  to the next, and a slot left idle at the end while the last trial runs; `timeline` has every trial.

The model and the searcher are chosen so that the fixed costs of a run are small beside its work. With
`filters: 32` an epoch takes ~1.4 s, so the two processes' start (~15 slot-seconds, whatever the run) weighs
2.5 x more; and hyperopt (`--search hyperopt`) promotes its late, good trials to the full 9 epochs more
often, so one slot more often idles at the end while the last of them runs. That design (filters 32,
hyperopt) measured 0.84, 0.91 and 0.91 in three runs on the 2-core machine, the spread being the idle end.

Every timing run must hold the benchmark lock, so that two timing runs never share the 2 cores:

    flock /tmp/tunerd-bench.lock python benchmarks/utilisation.py              # 24 trials, target >= 0.90
    flock /tmp/tunerd-bench.lock python benchmarks/utilisation.py --quick      # 8 trials of <= 3 epochs: a look

Writes `benchmarks/results/utilisation.json`; prints the figure with PASS or FAIL and where the rest of the
slots' time went.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "utilisation.json"
TARGET = 0.90
_IMPORTED_AT = time.time()  # in a trial's process: when it first ran tunerd's trainable (its actor's start)

SPEC = """\
name: utilisation
trainable: cnn
data: {{name: mnist}}
metric: val_accuracy
mode: max
seed: 0
space:
  conv_layers: 2
  filters: 64
  kernel_size: 3
  dense_units: 128
  lr: {{loguniform: [3.0e-4, 1.0e-2]}}
  optimizer: {{choice: [adam, sgd]}}
  momentum: 0.9
  batch_size: {{choice: [32, 64]}}
  dropout: {{uniform: [0.0, 0.4]}}
  epochs: {epochs}
search: {{algorithm: {search}, num_samples: {trials}}}
scheduler: {{name: asha, grace_period: 1, reduction_factor: 3}}
stop: {{max_epochs: {epochs}}}
resources: {{cpu: 1}}
checkpoint: {{every: 1, keep: 2}}
tensorboard: true
"""


def timed_train_builtin(config: dict[str, Any], context: Any) -> None:
    """`trainables.train_builtin`, with each epoch's seconds (`run_epoch`) added to its report."""
    from trainables import builtin, loop

    if not getattr(loop.run_epoch, "_timed", False):  # once per worker process (actors are reused)
        loop.run_epoch = _timed(loop.run_epoch)
        builtin.report_to_tune = _timed_report(builtin.report_to_tune)
    _timed.trial = {"entered": time.perf_counter(), "entered_at": time.time(), "epoch_total": 0.0,
                    "between_total": 0.0, "report_total": 0.0, "ended": None}
    builtin.train_builtin(config, context)


def _timed(run_epoch: Any) -> Any:
    @functools.wraps(run_epoch)
    def timed(*args: Any, **kwargs: Any) -> dict[str, Any]:
        trial = _timed.trial
        started = time.perf_counter()
        scores = run_epoch(*args, **kwargs)
        ended = time.perf_counter()
        first = trial["ended"] is None
        trial["epoch_total"] += ended - started
        trial["between_total"] += 0.0 if first else started - trial["ended"]
        if first:
            trial["startup"] = started - trial["entered"]
        trial["ended"] = ended
        return {**scores, "bench_epoch_s": ended - started, "bench_epoch_s_total": trial["epoch_total"],
                "bench_startup_s": trial["startup"], "bench_between_s_total": trial["between_total"],
                "bench_entered_at": trial["entered_at"], "bench_ended_at": time.time(),
                "bench_imported_at": _IMPORTED_AT, "bench_process_started_at": _process_started()}

    timed._timed = True  # type: ignore[attr-defined]
    return timed


def _timed_report(report: Any) -> Any:
    """Time `tune.report` (the checkpoint's copy to storage and Tune's round trip), for the breakdown."""
    @functools.wraps(report)
    def timed(metrics: dict[str, Any], checkpoint_dir: Any) -> None:
        started = time.perf_counter()
        report({**metrics, "bench_report_s_total": _timed.trial["report_total"]}, checkpoint_dir)
        _timed.trial["report_total"] += time.perf_counter() - started

    return timed


@functools.cache
def _process_started() -> float:
    import psutil

    return psutil.Process().create_time()


class _DriverTimes:
    """A Tune callback recording when the driver saw each trial start and end (diagnostics only)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    def callback(self) -> Any:
        from ray.tune import Callback

        events = self.events

        class Times(Callback):
            def on_trial_start(self, iteration, trials, trial, **info):
                events.append(("start", trial.trial_id, time.time()))

            def on_trial_complete(self, iteration, trials, trial, **info):
                events.append(("end", trial.trial_id, time.time()))

        return Times()


@contextlib.contextmanager
def fit_timer() -> Any:
    """Record the wall time of every `tune.Tuner.fit` call made inside the block."""
    from ray import tune

    calls: list[dict[str, float]] = []
    original = tune.Tuner.fit

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        started, started_at = time.monotonic(), time.time()
        try:
            return original(self, *args, **kwargs)
        finally:
            calls.append({"wall_s": time.monotonic() - started, "started_at": started_at})

    tune.Tuner.fit = fit
    try:
        yield calls
    finally:
        tune.Tuner.fit = original


def measure(trials: int, epochs: int, search: str) -> dict[str, Any]:
    import ray

    import trainables
    from benchmarks import utilisation as this  # by reference, so the workers import it (not __main__)
    from tunerd import api, runner
    from tunerd.session import ray_session

    storage = Path(tempfile.mkdtemp(prefix="tunerd-utilisation-"))
    try:
        spec = storage / "utilisation.yaml"
        spec.write_text(SPEC.format(trials=trials, epochs=epochs, search=search))
        experiment = api.load(spec, storage=str(storage / "results"))
        with ray_session(None, None):
            slots = int(ray.cluster_resources().get("CPU", 1))
            original = trainables.train_builtin
            trainables.train_builtin = this.timed_train_builtin  # what tunerd's runner hands Tune
            driver = _DriverTimes()
            callbacks = runner._callbacks
            runner._callbacks = lambda *args, **kwargs: [*callbacks(*args, **kwargs), driver.callback()]
            try:
                with fit_timer() as calls, open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
                    started = time.monotonic()
                    outcome = api.launch(experiment, overwrite=True)  # the progress view on, to /dev/null
                    launch_wall = time.monotonic() - started
            finally:
                trainables.train_builtin = original
                runner._callbacks = callbacks
        summary = json.loads((Path(outcome.folder) / "summary.json").read_text())
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    (fit,) = calls
    fit_wall = fit["wall_s"]
    seen = {(event, trial_id): round(at - fit["started_at"], 2) for event, trial_id, at in driver.events}
    rows = [t for t in summary["trials"] if t["last"]]
    epoch_s = sum(t["last"]["bench_epoch_s_total"] for t in rows)
    startup_s = sum(t["last"]["bench_startup_s"] for t in rows)
    between_s = sum(t["last"]["bench_between_s_total"] for t in rows)
    report_s = sum(t["last"]["bench_report_s_total"] for t in rows)  # each trial's last report is not in it
    epochs_run = sum(t["epochs"] for t in rows)
    slot_s = fit_wall * slots
    # the first epoch of each slot's first trial (the processes' start), and the slot left idle at the end
    first_epochs = sorted(t["last"]["bench_entered_at"] + t["last"]["bench_startup_s"] for t in rows)[:slots]
    ends = sorted(t["last"]["bench_ended_at"] for t in rows)
    idle_end = fit["started_at"] + fit_wall - ends[-slots] if len(ends) >= slots else 0.0
    return {
        "state": outcome.state, "trials": len(summary["trials"]), "trials_reporting": len(rows),
        "statuses": {s: sum(t["status"] == s for t in summary["trials"]) for s in ("finished", "stopped",
                                                                                   "diverged", "errored")},
        "epochs_run": epochs_run, "slots": slots, "fit_wall_s": round(fit_wall, 2),
        "launch_wall_s": round(launch_wall, 2), "epoch_s": round(epoch_s, 2),
        "median_epoch_s": round(statistics.median(t["last"]["bench_epoch_s_total"] / t["epochs"] for t in rows), 3),
        "utilisation": round(epoch_s / slot_s, 4),
        # where the rest of the slots' time went (shares of fit wall x slots)
        "trial_startup_share": round(startup_s / slot_s, 4),
        "between_epochs_share": round(between_s / slot_s, 4),
        "of_which_tune_report_share": round(report_s / slot_s, 4),
        "elsewhere_share": round((slot_s - epoch_s - startup_s - between_s) / slot_s, 4),
        "first_epoch_starts_s": [round(at - fit["started_at"], 2) for at in first_epochs],
        "idle_slot_at_end_s": round(idle_end, 2),
        "best_val_accuracy": summary["best"]["metric"] if summary["best"] else None,
        # each trial in start order: from the trial function's start to its last epoch's end, seconds after
        # Tuner.fit started, its epochs and its seconds inside them
        "timeline": [{"trial_id": t["trial_id"], "status": t["status"], "epochs": t["epochs"],
                      "start_s": round(t["last"]["bench_entered_at"] - fit["started_at"], 2),
                      "last_epoch_end_s": round(t["last"]["bench_ended_at"] - fit["started_at"], 2),
                      "epoch_s": round(t["last"]["bench_epoch_s_total"], 2),
                      "startup_s": round(t["last"]["bench_startup_s"], 2),
                      "process_started_s": round(t["last"]["bench_process_started_at"] - fit["started_at"], 2),
                      "driver_start_s": seen.get(("start", t["trial_id"])),
                      "driver_end_s": seen.get(("end", t["trial_id"]))}
                     for t in sorted(rows, key=lambda t: t["last"]["bench_entered_at"])],
    }


def run(quick: bool = False, *, trials: int | None = None, epochs: int | None = None, search: str = "random",
        output: str | os.PathLike[str] = OUTPUT) -> list[dict[str, Any]]:
    """Measure, write the JSON report, return the target's row (`quick`: 8 trials of at most 3 epochs, a
    smoke test: the fixed start of the trial processes weighs much more there)."""
    os.chdir(ROOT)  # the workers import benchmarks.utilisation from here
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    trials = trials or (8 if quick else 24)
    epochs = epochs or (3 if quick else 9)
    print(f"utilisation: {trials} trials of cnn on mnist, {search} search + ASHA, up to {epochs} epochs ...",
          flush=True)
    result = measure(trials, epochs, search)
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
              "quick": quick, **result}
    row = {"target": f"utilisation, {trials} ASHA trials of cnn on mnist (epoch seconds / fit wall x slots)",
           "measured": result["utilisation"], "threshold": TARGET, "unit": "share",
           "pass": result["utilisation"] >= TARGET}
    report["targets"] = [row]
    from trainables.files import write_atomic

    write_atomic(output, json.dumps(report, indent=2) + "\n")
    print(f"  {result['trials']} trials ({result['statuses']}), {result['epochs_run']} epochs, Tuner.fit "
          f"{result['fit_wall_s']} s x {result['slots']} slots; {result['epoch_s']} s inside epochs (median "
          f"{result['median_epoch_s']} s per epoch)")
    print(f"  the rest: trial start-up {result['trial_startup_share']:.1%}, between epochs (checkpoint, report) "
          f"{result['between_epochs_share']:.1%}, elsewhere (processes' start, trial to trial, idle slot) "
          f"{result['elsewhere_share']:.1%}")
    print(f"  first epochs began {' and '.join(f'{s} s' for s in result['first_epoch_starts_s'])} after Tuner.fit "
          f"started; a slot was idle for the last {result['idle_slot_at_end_s']} s")
    print(f"{'PASS' if row['pass'] else 'FAIL'}  {row['target']}: {row['measured']:.3f} (target >= {TARGET})")
    print(f"written: {output}")
    return [row]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="trials (default 24; --quick 8)")
    parser.add_argument("--epochs", type=int, help="epochs at most per trial, ASHA's max_t (default 9; --quick 3)")
    parser.add_argument("--search", default="random", choices=("random", "hyperopt"), help="searcher (default random)")
    parser.add_argument("--quick", action="store_true", help="8 trials, 3 epochs: a smoke test, not the figure")
    parser.add_argument("--output", default=str(OUTPUT), help=f"the JSON report (default {OUTPUT})")
    args = parser.parse_args(argv)
    rows = run(args.quick, trials=args.trials, epochs=args.epochs, search=args.search, output=args.output)
    return 0 if all(row["pass"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
