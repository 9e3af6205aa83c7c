"""Every performance target of tunerd, measured and judged: one line per target with its figure and PASS/FAIL.

Runs, in this order, each benchmark's `run(quick)` (each also writes its own JSON and prints its details):
- overhead.py: scheduling overhead against raw Ray Tune, and how it grows with the number of trials;
- throughput.py: an epoch of cnn, mlp and rnn inside tunerd against a hand-written PyTorch loop;
- utilisation.py: the share of the CPU slots a 24-trial ASHA experiment spends inside epochs;
- search_quality.py: hyperopt, bayesopt and auto (each + ASHA) against random search (trial-epochs), auto
  against Optuna TPE + Hyperband, and Branin;
- search_peers.py: every search algorithm and auto against Optuna's samplers on test functions, and
  bayesopt's time per suggestion;
- cli_latency.py: the read-only commands' start, whole processes.
The GPU figures come from `gpu_check.py`, run on its own where a GPU is (see the README).

Writes `benchmarks/results/run_all.json`; exits 1 if any target fails. `--quick` is a smoke run at smaller
sizes: the thresholds are the full sizes' (8 short trials cannot reach 0.90 utilisation: each trial
process's start weighs more), so its PASS/FAIL lines are shown but not judged, and it exits 0 when every
benchmark ran.

    python benchmarks/run_all.py            # everything, full size (about two hours on 2 cores)
    python benchmarks/run_all.py --quick    # smaller sizes: a look, not the figures for the README
    python benchmarks/run_all.py --only overhead,throughput
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "run_all.json"
BENCHMARKS = ("overhead", "throughput", "utilisation", "search_quality", "search_peers", "cli_latency")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (not the README's figures)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated benchmarks to run")
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # trainables named benchmarks.workloads:... are imported from here
    sys.path.insert(0, str(ROOT))
    chosen = [name for name in args.only.split(",") if name]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    rows: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    for name in chosen:
        print(f"\n=== {name} ===", flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"benchmarks.{name}")
        for row in module.run(quick=args.quick):
            rows.append({"benchmark": name, **row})
        timings[name] = round(time.monotonic() - started, 1)
    print_table(rows)
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
              "date": time.strftime("%Y-%m-%d"), "quick": args.quick, "seconds": timings, "targets": rows}
    from trainables.files import write_atomic

    output = Path(args.output)
    write_atomic(output, json.dumps(report, indent=2) + "\n")  # a reader never sees half a report
    print(f"\nwritten: {output}")
    if args.quick:
        print("--quick: smaller sizes than the targets are set for; the lines above are not judged")
        return 0
    return 0 if all(row["pass"] for row in rows) else 1


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'target':<72} {'measured':>12} {'threshold':>12}  result")
    for row in rows:
        unit = f" {row['unit']}" if row.get("unit") else ""
        print(f"{row['target'][:72]:<72} {_figure(row['measured']):>12} {_figure(row['threshold']):>12}  "
              f"{'PASS' if row['pass'] else 'FAIL'}{unit}")


def _figure(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


if __name__ == "__main__":
    sys.exit(main())
