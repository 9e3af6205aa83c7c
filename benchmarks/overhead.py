"""Scheduling overhead: what tunerd adds to Ray Tune per trial, and how that grows with the number of trials.

Trials of `benchmarks.workloads:trivial` (one report, no work), 1 CPU each, so the wall time is nothing
but scheduling: Ray Tune starting, feeding and stopping trials, and tunerd's callbacks (summary.json, the
TensorBoard files, the progress view). "s per trial per slot" = wall seconds x trial slots (the Ray's CPUs
/ 1 CPU per trial) / trials: the time one slot spends per trial.

- compare (target 1): `--trials` (200) trials through tunerd (`tunerd.launch`, random search, FIFO,
  TensorBoard on, the progress view on (to /dev/null), timed from the call to its return: the Tuner's
  set-up, `Tuner.fit` and the end of the run with summary.json and leaderboard.csv written) and through
  plain Ray Tune (`tune.Tuner(trivial, param_space={"x": tune.uniform(0, 4)},
  TuneConfig(num_samples=N, reuse_actors=True), RunConfig(storage_path=...))`, Ray's defaults otherwise:
  its CSV, JSON and TensorBoard loggers, its progress table, sent to /dev/null here; timed from building
  the Tuner to `fit`'s return), in the same process and the same Ray, `--rounds` (3) rounds, the order
  alternating per round. Reported: the median
  of tunerd's s per trial per slot (target <= 0.15), and the median over rounds of tunerd's wall time /
  raw Tune's (target <= 1.0). One tunerd run of 10 trials first starts Ray's worker processes.
- growth (target 3): for each of `--sizes` (50, 200, 800) a fresh process with its own Ray runs the
  warm-up and then one tunerd experiment of that many trials: its s per trial per slot and the driver's
  peak memory (its VmHWM, `benchmarks/measure.py`: Ray's own processes are not counted). Targets: the cost per
  trial at the largest size at most 1.5 x that at the middle one (about linear; O(n^2) work would show
  as a cost per trial growing with n), and the driver's peak memory at the largest size at most 1.5 x
  that at the smallest (the imports, Ray's client and Tune are most of it; each trial adds its record).

Every timing run must hold the benchmark lock, so that two timing runs never share the 2 cores:

    flock /tmp/tunerd-bench.lock python benchmarks/overhead.py                  # both, full size
    flock /tmp/tunerd-bench.lock python benchmarks/overhead.py --only compare --trials 200 --rounds 3
    flock /tmp/tunerd-bench.lock python benchmarks/overhead.py --only growth --sizes 50,200,800

Writes `benchmarks/results/overhead.json`; prints each target's figure with PASS or FAIL.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/NAME.py` puts benchmarks/ first, not the repo

from benchmarks.measure import peak_rss_mib  # noqa: E402
from benchmarks.workloads import TRIVIAL_SPEC  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "results" / "overhead.json"

PER_SLOT_TARGET = 0.15  # s per trial per slot, tunerd
RAW_RATIO_TARGET = 1.0  # tunerd's wall / raw Ray Tune's, same trials, same Ray
GROWTH_TARGET = 1.5  # s per trial per slot at the largest size / at the middle size
MEMORY_TARGET = 1.5  # the driver's peak RSS at the largest size / at the smallest size
WARM_UP_TRIALS = 10


def slots() -> int:
    """Trials that run at once: the Ray's CPUs, 1 per trial."""
    import ray

    return int(ray.cluster_resources().get("CPU", 1))


def run_tunerd(trials: int, storage: Path) -> float:
    """Wall seconds of one tunerd experiment (the Python API, as `tunerd launch --quiet` runs it)."""
    from tunerd import api

    storage.mkdir(parents=True, exist_ok=True)
    spec = storage / "overhead.yaml"
    spec.write_text(TRIVIAL_SPEC.format(name="overhead", trials=trials))
    experiment = api.load(spec, storage=str(storage))
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # the progress view, as raw's
        started = time.monotonic()
        outcome = api.launch(experiment, overwrite=True)
        wall = time.monotonic() - started
    summary = json.loads((Path(outcome.folder) / "summary.json").read_text())
    finished = sum(t["status"] == "finished" for t in summary["trials"])
    if outcome.state != "finished" or finished != trials:
        raise RuntimeError(f"tunerd run: state {outcome.state}, {finished} of {trials} trials finished")
    return wall


def run_raw(trials: int, storage: Path) -> float:
    """Wall seconds of the same trials through plain Ray Tune (reuse_actors on, Ray's defaults otherwise)."""
    from ray import tune
    from ray.tune import RunConfig, TuneConfig

    from benchmarks.workloads import trivial

    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):  # Ray's progress table
        started = time.monotonic()
        tuner = tune.Tuner(trivial, param_space={"x": tune.uniform(0, 4)},
                           tune_config=TuneConfig(num_samples=trials, reuse_actors=True),
                           run_config=RunConfig(storage_path=str(storage), name="raw"))
        results = tuner.fit()
        wall = time.monotonic() - started
    if results.num_errors or len(results) != trials:
        raise RuntimeError(f"raw Tune run: {len(results)} results, {results.num_errors} errors")
    return wall


def compare(trials: int, rounds: int) -> dict[str, Any]:
    """Target 1: tunerd and raw Tune alternately on one Ray; medians over the rounds."""
    from tunerd.session import ray_session

    scratch = Path(tempfile.mkdtemp(prefix="tunerd-overhead-"))
    rows = []
    try:
        with ray_session(None, None):
            n_slots = slots()
            run_tunerd(WARM_UP_TRIALS, scratch / "warm-up")
            for i in range(rounds):
                order = ("tunerd", "raw") if i % 2 == 0 else ("raw", "tunerd")
                row: dict[str, Any] = {"round": i, "order": list(order)}
                for side in order:
                    folder = scratch / f"{side}-{i}"
                    row[f"{side}_wall_s"] = round(run_tunerd(trials, folder) if side == "tunerd"
                                                  else run_raw(trials, folder), 3)
                    shutil.rmtree(folder, ignore_errors=True)
                row["ratio"] = round(row["tunerd_wall_s"] / row["raw_wall_s"], 3)
                print(f"  round {i}: tunerd {row['tunerd_wall_s']:.2f} s, raw Tune {row['raw_wall_s']:.2f} s, "
                      f"ratio {row['ratio']:.2f}", flush=True)
                rows.append(row)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tunerd_wall = statistics.median(r["tunerd_wall_s"] for r in rows)
    raw_wall = statistics.median(r["raw_wall_s"] for r in rows)
    return {"trials": trials, "slots": n_slots, "rounds": rows,
            "tunerd_wall_s": tunerd_wall, "raw_wall_s": raw_wall,
            "tunerd_s_per_trial_per_slot": round(tunerd_wall * n_slots / trials, 4),
            "raw_s_per_trial_per_slot": round(raw_wall * n_slots / trials, 4),
            "ratio": statistics.median(r["ratio"] for r in rows)}


def one_size(trials: int) -> dict[str, Any]:
    """In a fresh process (`--child N`): a warm-up, then one tunerd run of `trials` trials."""
    from tunerd.session import ray_session

    scratch = Path(tempfile.mkdtemp(prefix="tunerd-growth-"))
    try:
        with ray_session(None, None):
            n_slots = slots()
            run_tunerd(WARM_UP_TRIALS, scratch / "warm-up")
            before = peak_rss_mib()
            wall = run_tunerd(trials, scratch / "run")
            summary_kib = (scratch / "run" / "overhead" / "summary.json").stat().st_size / 1024
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"trials": trials, "slots": n_slots, "wall_s": round(wall, 3),
            "s_per_trial_per_slot": round(wall * n_slots / trials, 4),
            "peak_rss_mib": round(peak_rss_mib(), 1), "peak_rss_before_run_mib": round(before, 1),
            "summary_json_kib": round(summary_kib, 1)}


def growth(sizes: list[int]) -> dict[str, Any]:
    """Target 3: each size in a fresh process, so that its peak memory is its own."""
    rows = []
    for trials in sizes:
        done = subprocess.run([sys.executable, __file__, "--child", str(trials)], cwd=ROOT, capture_output=True,
                              text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"growth run of {trials} trials failed:\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  {trials:>5} trials: {row['wall_s']:.1f} s, {row['s_per_trial_per_slot']:.3f} s per trial per slot, "
              f"driver peak RSS {row['peak_rss_mib']:.0f} MiB, summary.json {row['summary_json_kib']:.0f} KiB",
              flush=True)
        rows.append(row)
    first, middle, last = rows[0], rows[len(rows) // 2], rows[-1]
    return {"sizes": rows, "growth": round(last["s_per_trial_per_slot"] / middle["s_per_trial_per_slot"], 3),
            "growth_between": [middle["trials"], last["trials"]],
            "memory_growth": round(last["peak_rss_mib"] / first["peak_rss_mib"], 3),
            "memory_growth_between": [first["trials"], last["trials"]],
            "kib_per_extra_trial": round((last["peak_rss_mib"] - first["peak_rss_mib"]) * 1024
                                         / max(1, last["trials"] - first["trials"]), 1)}


def target_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    if "compare" in report:
        result = report["compare"]
        rows.append(target(f"scheduling overhead, {result['trials']} trivial trials", result[
            "tunerd_s_per_trial_per_slot"], PER_SLOT_TARGET, "s per trial per slot"))
        rows.append(target("tunerd wall time / raw Ray Tune's (reuse_actors), same trials and Ray",
                           result["ratio"], RAW_RATIO_TARGET, "x"))
    if "growth" in report:
        result = report["growth"]
        small, large = result["growth_between"]
        rows.append(target(f"growth of the cost per trial, {large} vs {small} trials", result["growth"],
                           GROWTH_TARGET, "x"))
        small, large = result["memory_growth_between"]
        rows.append(target(f"driver peak memory, {large} vs {small} trials ({result['kib_per_extra_trial']:.0f} KiB "
                           "per extra trial)", result["memory_growth"], MEMORY_TARGET, "x"))
    return rows


def target(name: str, measured: float, threshold: float, unit: str) -> dict[str, Any]:
    return {"target": name, "measured": measured, "threshold": threshold, "unit": unit,
            "pass": measured <= threshold}


def run(quick: bool = False, *, trials: int | None = None, rounds: int | None = None,
        sizes: list[int] | None = None, only: str | None = None,
        output: str | os.PathLike[str] = OUTPUT) -> list[dict[str, Any]]:
    """Measure, write the JSON report, return one row per target (`quick`: small sizes, a smoke test)."""
    os.chdir(ROOT)  # the trainable is named benchmarks.workloads:trivial
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    trials = trials or (100 if quick else 200)
    rounds = rounds or (1 if quick else 3)
    sizes = sizes or ([25, 50, 100] if quick else [50, 200, 800])
    report: dict[str, Any] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                              "python": platform.python_version(), "quick": quick}
    if only in (None, "compare"):
        print(f"compare: {trials} trials, {rounds} rounds of tunerd and raw Ray Tune ...", flush=True)
        report["compare"] = compare(trials, rounds)
    if only in (None, "growth"):
        print(f"growth: {', '.join(map(str, sizes))} trials, a fresh process each ...", flush=True)
        report["growth"] = growth(sizes)
    report["targets"] = rows = target_rows(report)
    from trainables.files import write_atomic

    write_atomic(output, json.dumps(report, indent=2) + "\n")
    for row in rows:
        print(f"{'PASS' if row['pass'] else 'FAIL'}  {row['target']}: {row['measured']:.3f} {row['unit']} "
              f"(target <= {row['threshold']})")
    print(f"written: {output}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, help="trials per run when comparing (default 200; --quick 100)")
    parser.add_argument("--rounds", type=int, help="rounds of tunerd and raw Tune (default 3; --quick 1)")
    parser.add_argument("--sizes", help="trial counts for the growth table (default 50,200,800; --quick 25,50,100)")
    parser.add_argument("--only", choices=("compare", "growth"), help="run one part only")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not figures")
    parser.add_argument("--output", default=str(OUTPUT), help=f"the JSON report (default {OUTPUT})")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one growth size, in its own process
    args = parser.parse_args(argv)
    if args.child:
        os.chdir(ROOT)
        sys.path.insert(0, str(ROOT))
        with contextlib.redirect_stdout(sys.stderr):
            row = one_size(args.child)
        print(json.dumps(row))
        return 0
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else None
    rows = run(args.quick, trials=args.trials, rounds=args.rounds, sizes=sizes, only=args.only, output=args.output)
    return 0 if all(row["pass"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
