"""CLI latency: how long the read-only commands take as whole processes, and their peak memory, against
`python -c pass` (and `optuna --version` where Optuna is installed) measured in the same run.

Targets (issue 13; medians of `--repeats` runs, whole process, interpreter start included):
`tunerd --help`, `tunerd status`, `tunerd show NAME` <= 0.4 s; `tunerd validate search_spaces/quickstart.yaml`
<= 1.0 s. Each command also must not import Ray or torch (checked in every run, from inside the process).

`status` and `show` read a storage this benchmark writes: 3 experiments of 200 trials with 20 epochs of
history each (summary.json and spec.yaml as tunerd writes them, no Ray needed).

    python benchmarks/cli_latency.py              # 9 runs per command; writes benchmarks/results/cli_latency.json
    python benchmarks/cli_latency.py --quick      # 3 runs per command
    python benchmarks/cli_latency.py --baseline /tmp/old   # also time another checkout's CLI in the same run
                                                           # (e.g. `git worktree add /tmp/old <commit>`)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "benchmarks" / "results" / "cli_latency.json"
#: command -> seconds it must take at most (median)
TARGETS = {"--help": 0.4, "status": 0.4, "show": 0.4, "validate": 1.0}

#: runs the tunerd CLI as the console script does, then writes the process's peak memory (VmHWM) and which
#: of ray / torch it imported to the file named by TUNERD_BENCH_REPORT (at exit, SystemExit included)
_WRAPPER = """
import atexit, json, os, sys
def _report():
    peak = next((int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')), 0)
    with open(os.environ['TUNERD_BENCH_REPORT'], 'w') as f:
        json.dump({'peak_kib': peak, 'ray': 'ray' in sys.modules, 'torch': 'torch' in sys.modules}, f)
atexit.register(_report)
sys.argv = ['tunerd', *sys.argv[1:]]
from tunerd.cli import main
main()
"""


def write_storage(root: Path, experiments: int = 3, trials: int = 200, epochs: int = 20) -> None:
    """Experiments as tunerd leaves them on disk, through tunerd's own schema (`tunerd.summary`)."""
    import random

    import yaml

    from tunerd.summary import BestTrial, ExperimentState, Summary, TrialRecord, TrialStatus, count_statuses

    rng = random.Random(0)
    for e in range(experiments):
        name = f"exp{e}"
        records = []
        for i in range(trials):
            config = {"lr": 10 ** rng.uniform(-4, -1), "dropout": rng.uniform(0, 0.5), "batch_size": 64}
            history = [{"epoch": k, "train_loss": 1 / k, "val_loss": 1.1 / k, "train_accuracy": 1 - 0.5 / k,
                        "val_accuracy": 1 - 0.6 / k - rng.random() * 0.05, "generalization_gap": 0.1 / k}
                       for k in range(1, epochs + 1)]
            best = max(history, key=lambda h: h["val_accuracy"])
            records.append(TrialRecord(trial_id=f"t{e}_{i:05d}", config=config, index=i,
                                       status=TrialStatus.FINISHED, epochs=epochs, last=history[-1], best=best,
                                       history=history, started="2026-12-06T00:00:00+00:00"))
        top = max(records, key=lambda t: t.best["val_accuracy"])
        summary = Summary(name=name, metric="val_accuracy", mode="max", trial_count=trials,
                          state=ExperimentState.FINISHED, started="2026-12-06T00:00:00+00:00",
                          updated="2026-12-06T01:00:00+00:00", counts=count_statuses(records, trials),
                          best=BestTrial(top.trial_id, top.config, top.best["val_accuracy"], top.best["epoch"],
                                         epochs), trials=records)
        (root / name).mkdir(parents=True)
        (root / name / "summary.json").write_text(json.dumps(summary.to_json()))
        (root / name / "spec.yaml").write_text(yaml.safe_dump({
            "name": name, "trainable": "mlp", "scheduler": {"name": "asha"}, "stop": {"max_epochs": epochs},
            "space": {"lr": {"loguniform": [1e-4, 1e-1]}, "dropout": {"uniform": [0, 0.5]}, "batch_size": 64}}))


def time_process(argv: list[str], *, env: dict[str, str], report: Path | None = None) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
    return seconds, (json.loads(report.read_text()) if report is not None else {})


def run(quick: bool = False, *, repeats: int | None = None, output: Path | None = OUTPUT,
        baseline: Path | None = None) -> list[dict[str, Any]]:
    repeats = repeats or (3 if quick else 9)
    folder = Path(tempfile.mkdtemp(prefix="tunerd-cli-latency-"))
    try:
        storage = folder / "storage"
        write_storage(storage)
        report_file = folder / "report.json"
        env = {**os.environ, "TUNERD_BENCH_REPORT": str(report_file), "TUNERD_STORAGE": str(storage),
               "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)}
        python = [sys.executable]
        tunerd = [sys.executable, "-c", _WRAPPER]
        commands: dict[str, tuple[list[str], Path | None]] = {
            "python -c pass": ([*python, "-c", "pass"], None),
            "--help": ([*tunerd, "--help"], report_file),
            "status": ([*tunerd, "status"], report_file),
            "show": ([*tunerd, "show", "exp0"], report_file),
            "validate": ([*tunerd, "validate", "search_spaces/quickstart.yaml"], report_file),
        }
        if baseline is not None:  # the same commands on another checkout (its modules first on the path)
            old = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(baseline)!r})\n{_WRAPPER}"]
            for name in ("--help", "status", "show", "validate"):
                argv = commands[name][0]
                commands[f"baseline {name}"] = ([*old, *argv[3:]], report_file)
        optuna = shutil.which("optuna") or (shutil.which("optuna", path=str(Path(sys.executable).parent)))
        if optuna:
            commands["optuna --version"] = ([optuna, "--version"], None)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        reports: dict[str, dict] = {}
        for _ in range(repeats):  # interleaved: a busy moment of the machine hits every command alike
            for name, (argv, report) in commands.items():
                seconds, reports[name] = time_process(argv, env=env, report=report)
                samples[name].append(seconds)
        rows, details = [], {}
        for name, seconds in samples.items():
            median = statistics.median(seconds)
            seen = reports.get(name) or {}
            details[name] = {"median_s": round(median, 4), "runs_s": [round(s, 4) for s in seconds],
                             "peak_mib": round(seen["peak_kib"] / 1024, 1) if seen else None,
                             "imports_ray": seen.get("ray"), "imports_torch": seen.get("torch")}
            print(f"{name:<18} median {median:.3f} s  (min {min(seconds):.3f}, max {max(seconds):.3f})"
                  + (f"  peak {seen['peak_kib'] / 1024:.0f} MiB, ray {seen['ray']}, torch {seen['torch']}"
                     if seen else ""), flush=True)
            if name in TARGETS:
                ok = median <= TARGETS[name] and not seen.get("ray") and not seen.get("torch")
                rows.append({"target": f"tunerd {name}: whole process, without Ray or torch",
                             "measured": round(median, 4), "threshold": TARGETS[name], "unit": "s (median)",
                             "pass": ok})
        if output is not None:
            from trainables.files import write_atomic

            write_atomic(output, json.dumps({
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
                "date": time.strftime("%Y-%m-%d"), "repeats": repeats, "baseline": str(baseline) if baseline else None,
                "commands": details, "targets": rows},
                indent=2) + "\n")
            print(f"written: {output}")
        return rows
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per command instead of 9")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--output", default=str(OUTPUT))
    parser.add_argument("--baseline", default=None, metavar="DIR", help="another checkout to time alongside")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    rows = run(args.quick, repeats=args.repeats, output=Path(args.output),
               baseline=Path(args.baseline).resolve() if args.baseline else None)
    for row in rows:
        print(f"{row['target']}: {row['measured']:.3f} s <= {row['threshold']} s: {'PASS' if row['pass'] else 'FAIL'}")
    return 0 if all(row["pass"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
