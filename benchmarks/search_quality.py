"""Search quality: do tunerd's model-based searchers find what random search finds, for less?

Everything runs through tunerd (`tunerd.api.load` + `api.launch`), so what is measured is tunerd's searcher
adapters and scheduler as users get them, and it is counted in trial-epochs (or trials), not seconds: the
figures do not depend on the machine's load.

**MNIST** (`benchmarks/spaces/mnist_search.yaml`: the built-in cnn on 5,000 real MNIST digits, 1,500 of the
3,000 training images kept (`data.train_size`) so the whole benchmark fits in ~15 minutes on 2 cores, 1,000
validation images; the learning rate over five decades, the optimizer, the width and the dropout; 9 epochs).
For each of 3 seeds (the seed also draws the data split, so each seed is its own problem):
- random search, 32 trials, FIFO (every trial trains its 9 epochs): its best val_accuracy is the bar;
- hyperopt + ASHA, bayesopt + ASHA and auto + ASHA (rungs at epochs 1 and 3, reduction factor 3), 32 trials
  each, through tunerd;
- the peer: Optuna's TPE with its Hyperband pruner (the same rungs), 32 trials, 2 at once, run directly on the
  same training code (`optuna_peer`).
Every report (one per trial-epoch) is counted in the order the driver received it (tunerd's `--json-lines`
events). A searcher *reaches* random's result at the first report after which its best-so-far val_accuracy
is >= random's final best - 0.005. Targets: that point, as a fraction of random's total trial-epochs, is
<= 1/3 for each of tunerd's searches, and auto's is no more than Optuna TPE + Hyperband's (median of the 3
seeds; a seed that never reaches counts as infinite).

**Branin** (`benchmarks/spaces/branin.yaml`, the trainable `benchmarks.workloads:branin`, minimised over
x1 in [-5, 10], x2 in [0, 15]; minimum 0.397887), 60 trials, FIFO, each trial one evaluation:
- bayesopt: median best over 3 seeds within 0.05 of the minimum;
- hyperopt: median best over 5 seeds below random search's median best over the same 5 seeds.

Trials run 2 at a time (the machine's 2 CPUs, `resources.cpu: 1`), so the searchers suggest while earlier
trials are still running, as they do for users.

    python benchmarks/search_quality.py            # the full run, ~15 min on 2 cores (run from anywhere)
    python benchmarks/search_quality.py --quick    # one seed, 12 trials per search, ~3 min: a short look
    flock /tmp/tunerd-bench.lock python benchmarks/search_quality.py   # on a machine shared with timing runs

Writes `benchmarks/results/search_quality.json` and `benchmarks/results/search_quality.png` (best-so-far
val_accuracy against cumulative trial-epochs, one panel per seed); `run(quick)` returns the rows for
`benchmarks/run_all.py`.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/search_quality.py` from anywhere; the branin trainable
    sys.path.insert(0, str(ROOT))  # is `benchmarks.workloads:branin`, imported from here

from trainables.files import write_atomic  # noqa: E402

SPACES = ROOT / "benchmarks" / "spaces"
MNIST = SPACES / "mnist_search.yaml"
BRANIN = SPACES / "branin.yaml"
RESULTS = ROOT / "benchmarks" / "results"
OUTPUT = RESULTS / "search_quality.json"
PLOT = RESULTS / "search_quality.png"

BRANIN_MINIMUM = 0.397887
REACH_TOLERANCE = 0.005
EPOCH_FRACTION = 1 / 3
BAYESOPT_GAP = 0.05
#: tunerd's model-based searches, each with ASHA
MODEL_BASED = ("hyperopt", "bayesopt", "auto")
#: the peer: Optuna's TPE with its Hyperband pruner, run directly on the same training code
OPTUNA_PEER = "optuna-tpe-hyperband"


@dataclass(frozen=True)
class Plan:
    mnist_seeds: tuple[int, ...]
    mnist_trials: int  # random's and each model-based search's
    bayesopt_seeds: tuple[int, ...]
    hyperopt_seeds: tuple[int, ...]
    branin_trials: int


FULL = Plan(mnist_seeds=(0, 1, 2), mnist_trials=32, bayesopt_seeds=(0, 1, 2), hyperopt_seeds=(0, 1, 2, 3, 4),
            branin_trials=60)
QUICK = Plan(mnist_seeds=(0,), mnist_trials=12, bayesopt_seeds=(0,), hyperopt_seeds=(0,), branin_trials=30)


@dataclass
class Run:
    """One experiment: its reports in the order the driver received them."""

    name: str
    algorithm: str
    seed: int
    reports: list[dict[str, Any]]  # {"trial_id", "epoch", metric}
    wall_s: float

    def best_so_far(self, metric: str, mode: str) -> list[float]:
        pick = max if mode == "max" else min
        curve: list[float] = []
        for report in self.reports:
            value = report.get(metric)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                value = curve[-1] if curve else (-math.inf if mode == "max" else math.inf)
            curve.append(pick(curve[-1], value) if curve else value)
        return curve


def launch(path: Path, overrides: list[str], name: str, storage: str) -> Run:
    """One tunerd experiment, its `--json-lines` events captured: every `result` event is one report."""
    from tunerd import api

    experiment = api.load(path, overrides, name=name, storage=storage)
    events = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(events):
        outcome = api.launch(experiment, overwrite=True, quiet=True, json_lines=True)
    wall = time.monotonic() - started
    if outcome.state != "finished":
        raise RuntimeError(f"{name}: the experiment ended {outcome.state}")
    reports = []
    for line in events.getvalue().splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") == "result":
            reports.append({"trial_id": event["trial_id"], **event["metrics"]})
    spec = experiment.spec
    return Run(name, spec.search.algorithm, spec.seed, reports, round(wall, 1))


def optuna_peer(path: Path, seed: int, trials: int) -> Run:
    """Optuna as a user would run it on the same problem: `TPESampler(seed)` with `HyperbandPruner` (rungs
    from 1 to 9 epochs, reduction factor 3, ASHA's settings), `study.optimize(n_jobs=2)` (2 trials at once,
    as tunerd runs them), each trial the built-in cnn's own training loop (`trainables.run_training`) on
    the same data and split, reporting val_accuracy each epoch and pruned when Optuna says so. The space is
    the experiment file's, in tunerd's define-by-run encoding (the config a trial gets is the same)."""
    import threading

    import optuna
    import torch

    from trainables import TrialContext, run_training
    from tunerd import spec as speclib
    from tunerd.searchers._optuna import CONFIG_KEY, DefineByRun

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    experiment = speclib.load(path, [f"seed={seed}"])
    context = TrialContext(trainable="cnn", data=experiment.data_for_trainable(), seed=seed,
                           max_epochs=experiment.spec.stop.max_epochs, metric="val_accuracy", mode="max")
    define = DefineByRun(experiment.space)
    reports: list[dict[str, Any]] = []
    lock = threading.Lock()

    def objective(trial: Any) -> float:
        config = define(trial)[CONFIG_KEY]
        best = [-math.inf]

        def report(metrics: dict[str, Any], checkpoint: Any) -> None:
            value, epoch = metrics["val_accuracy"], int(metrics["epoch"])
            with lock:
                reports.append({"trial_id": trial.number, "epoch": epoch, "val_accuracy": value})
            best[0] = max(best[0], value)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        run_training(config, context, report=report)
        return best[0]

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core per trial, as tunerd's trials get
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9,
                                                                      reduction_factor=3))
    started = time.monotonic()
    try:
        study.optimize(objective, n_trials=trials, n_jobs=2)
    finally:
        torch.set_num_threads(previous_threads)
    return Run(f"{OPTUNA_PEER}-{seed}", OPTUNA_PEER, seed, reports, round(time.monotonic() - started, 1))


def reach(curve: list[float], target: float) -> int | None:
    """The 1-based count of reports after which `curve` (best-so-far, max) is >= target; None: never."""
    return next((i for i, best in enumerate(curve, start=1) if best >= target), None)


def mnist(plan: Plan, storage: str) -> dict[str, Any]:
    seeds = []
    for seed in plan.mnist_seeds:
        common = [f"seed={seed}", f"search.num_samples={plan.mnist_trials}"]
        runs = {"random": launch(MNIST, [*common, "search.algorithm=random", "scheduler.name=fifo"],
                                 f"random-{seed}", storage)}
        for algorithm in MODEL_BASED:
            runs[algorithm] = launch(MNIST, [*common, f"search.algorithm={algorithm}", "scheduler.name=asha"],
                                     f"{algorithm}-{seed}", storage)
        runs[OPTUNA_PEER] = optuna_peer(MNIST, seed, plan.mnist_trials)
        curves = {name: run.best_so_far("val_accuracy", "max") for name, run in runs.items()}
        bar, total = curves["random"][-1], len(curves["random"])
        row: dict[str, Any] = {"seed": seed, "random_best": bar, "random_trial_epochs": total,
                               "target": round(bar - REACH_TOLERANCE, 6), "curves": curves,
                               "wall_s": {name: run.wall_s for name, run in runs.items()}}
        for algorithm in (*MODEL_BASED, OPTUNA_PEER):
            reached = reach(curves[algorithm], bar - REACH_TOLERANCE)
            row[algorithm] = {"best": curves[algorithm][-1], "trial_epochs": len(curves[algorithm]),
                              "reached_at": reached,
                              "fraction": reached / total if reached is not None else math.inf}
        seeds.append(row)
        print(f"mnist seed {seed}: random best {bar:.4f} in {total} trial-epochs; "
              + "; ".join(f"{a} best {row[a]['best']:.4f}, reached {bar - REACH_TOLERANCE:.4f} at "
                          f"{row[a]['reached_at'] or 'never'} of {row[a]['trial_epochs']} trial-epochs"
                          for a in (*MODEL_BASED, OPTUNA_PEER)), flush=True)
    return {"seeds": seeds, "median_fraction": {a: statistics.median(s[a]["fraction"] for s in seeds)
                                                for a in (*MODEL_BASED, OPTUNA_PEER)}}


def branin(plan: Plan, storage: str) -> dict[str, Any]:
    trials = [f"search.num_samples={plan.branin_trials}"]
    best: dict[str, dict[int, float]] = {"bayesopt": {}, "hyperopt": {}, "random": {}}
    for algorithm, seeds in (("bayesopt", plan.bayesopt_seeds), ("hyperopt", plan.hyperopt_seeds),
                             ("random", plan.hyperopt_seeds)):
        for seed in seeds:
            run = launch(BRANIN, [*trials, f"search.algorithm={algorithm}", f"seed={seed}"],
                         f"branin-{algorithm}-{seed}", storage)
            best[algorithm][seed] = run.best_so_far("value", "min")[-1]
        print(f"branin {algorithm}: best " + ", ".join(f"{v:.4f}" for v in best[algorithm].values())
              + f" (seeds {', '.join(map(str, seeds))})", flush=True)
    return {"best": best, "median": {a: statistics.median(b.values()) for a, b in best.items()}}


def rows_of(mnist_result: dict[str, Any], branin_result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for algorithm in MODEL_BASED:
        fraction = mnist_result["median_fraction"][algorithm]
        rows.append({"target": f"mnist cnn: {algorithm} + ASHA reaches random search's best (-{REACH_TOLERANCE}) "
                               "within 1/3 of random's trial-epochs (median of seeds)",
                     # None: the median seed never reached it (JSON has no infinity)
                     "measured": round(fraction, 4) if math.isfinite(fraction) else None,
                     "threshold": round(EPOCH_FRACTION, 4), "unit": "x random's trial-epochs (lower is better)",
                     "pass": fraction <= EPOCH_FRACTION})
    auto, peer = mnist_result["median_fraction"]["auto"], mnist_result["median_fraction"][OPTUNA_PEER]
    rows.append({"target": "mnist cnn: auto + ASHA reaches random search's best in no more trial-epochs than "
                           "Optuna TPE + Hyperband (median of seeds)",
                 "measured": round(auto, 4) if math.isfinite(auto) else None,
                 "threshold": round(peer, 4) if math.isfinite(peer) else None,
                 "unit": "x random's trial-epochs (lower is better)", "pass": auto <= peer})
    gap = branin_result["median"]["bayesopt"] - BRANIN_MINIMUM
    rows.append({"target": "branin: bayesopt's best after the trials, above the minimum 0.397887 (median of seeds)",
                 "measured": round(gap, 4), "threshold": BAYESOPT_GAP, "unit": "above the minimum (lower is better)",
                 "pass": gap <= BAYESOPT_GAP})
    hyperopt, random = branin_result["median"]["hyperopt"], branin_result["median"]["random"]
    rows.append({"target": "branin: hyperopt's best vs random search's at the same budget (median of seeds)",
                 "measured": round(hyperopt, 4), "threshold": round(random, 4),
                 "unit": "best value, random's as the threshold (lower is better)", "pass": hyperopt < random})
    return rows


def plot(mnist_result: dict[str, Any], trials: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = mnist_result["seeds"]
    figure, axes = plt.subplots(1, len(seeds), figsize=(5.2 * len(seeds), 4.2), squeeze=False, sharey=True)
    colours = {"random": "tab:gray", "hyperopt": "tab:blue", "bayesopt": "tab:orange", "auto": "tab:green",
               OPTUNA_PEER: "tab:purple"}
    labels = {"random": "random, FIFO", "hyperopt": "hyperopt + ASHA", "bayesopt": "bayesopt + ASHA",
              "auto": "auto + ASHA", OPTUNA_PEER: "Optuna TPE + Hyperband"}
    for axis, row in zip(axes[0], seeds):
        for name, curve in row["curves"].items():
            axis.step(range(1, len(curve) + 1), curve, where="post", color=colours[name], label=labels[name])
        axis.axhline(row["target"], color="black", linestyle=":", linewidth=1,
                     label=f"random's best - {REACH_TOLERANCE}")
        axis.axvline(row["random_trial_epochs"] * EPOCH_FRACTION, color="tab:red", linestyle="--", linewidth=1,
                     label="1/3 of random's trial-epochs")
        for algorithm in (*MODEL_BASED, OPTUNA_PEER):
            if row[algorithm]["reached_at"] is not None:
                axis.plot(row[algorithm]["reached_at"], row["target"], "o", color=colours[algorithm])
        axis.set_title(f"seed {row['seed']}")
        axis.set_xlabel("cumulative trial-epochs")
        axis.grid(alpha=0.3)
    top = max(curve[-1] for row in seeds for curve in row["curves"].values())  # the panels share the y axis
    axes[0][0].set_ylim(max(0.5, min(row["target"] for row in seeds) - 0.1), min(1.0, top + 0.005))
    axes[0][0].set_ylabel("best val_accuracy so far")
    axes[0][-1].legend(loc="lower right", fontsize=8)
    figure.suptitle(f"mnist cnn: best-so-far val_accuracy\nvs cumulative trial-epochs ({trials} trials each)",
                    fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=110)
    plt.close(figure)
    tmp.replace(path)


def run(quick: bool = False, *, storage: str | None = None, output: Path | None = OUTPUT,
        plot_path: Path | None = PLOT) -> list[dict[str, Any]]:
    """Run both problems (on one Ray), print each figure with PASS/FAIL, write the JSON report and the plot
    (unless `output` / `plot_path` are None) and return the rows."""
    from tunerd.session import ray_session

    plan = QUICK if quick else FULL
    folder = storage or tempfile.mkdtemp(prefix="tunerd-search-quality-")
    started = time.monotonic()
    try:
        with ray_session(None, None):  # one Ray for every run
            mnist_result = mnist(plan, folder)
            branin_result = branin(plan, folder)
    finally:
        if storage is None:
            shutil.rmtree(folder, ignore_errors=True)
    rows = rows_of(mnist_result, branin_result)
    for row in rows:
        print(f"{row['target']}: {row['measured']} (threshold {row['threshold']}) {'PASS' if row['pass'] else 'FAIL'}")
    if plot_path is not None:
        plot(mnist_result, plan.mnist_trials, Path(plot_path))
        print(f"written: {plot_path}")
    if output is not None:
        report = {"benchmark": "search_quality", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "machine": f"{platform.machine()}, {platform.processor() or platform.system()}, "
                             f"{_cpus()} CPUs",
                  "quick": quick, "plan": plan.__dict__, "wall_s": round(time.monotonic() - started, 1),
                  "mnist": mnist_result, "branin": branin_result, "rows": rows}
        # a reader never sees half a report
        write_atomic(Path(output), json.dumps(_finite(report), indent=2, default=_json_default) + "\n")
        print(f"written: {output}")
    return rows


def _json_default(value: Any) -> Any:
    return str(value)


def _finite(value: Any) -> Any:
    """`value` with every non-finite float (a searcher that never reached) as None: JSON has no infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _cpus() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed, 12 trials per search: a short look")
    parser.add_argument("--storage", default=None, help="keep the experiments here (default: a temporary folder, "
                                                        "removed at the end)")
    parser.add_argument("--output", default=str(OUTPUT), help=f"the JSON report (default {OUTPUT})")
    parser.add_argument("--plot", default=str(PLOT), help=f"the PNG (default {PLOT})")
    args = parser.parse_args(argv)
    rows = run(args.quick, storage=args.storage, output=Path(args.output), plot_path=Path(args.plot))
    return 0 if all(row["pass"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
