"""Reliability figures for the README: hostile files, injected faults, and one experiment of many trials.

Three parts, each written to `benchmarks/results/reliability.json` and printed as a table:
- files: N malformed experiment files from the hostile-file test's generators (tests/hostile_files.py),
  each run through `tunerd launch` in-process: how many exit 2 with a message naming the key path or the
  file, how many printed a traceback, whether Ray was ever started;
- faults: one experiment whose trials raise (every attempt), are SIGKILLed once mid-run, or produce a NaN
  loss, beside healthy ones (`benchmarks.workloads:faulty`, `failures.max_retries: 2`): what each became,
  the attempts Ray made, and whether the experiment still finished with a best trial;
- load: one experiment of `--trials` (500) trials of a one-report trainable: every trial in `summary.json`,
  the driver's peak memory (the RSS of a fresh process that runs only this experiment; Ray's own processes
  are not in it), wall time, the record's size.

    python benchmarks/reliability.py                    # 2,000 files, the faults, 500 trials
    python benchmarks/reliability.py --files 200 --trials 50
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `python benchmarks/NAME.py` puts benchmarks/ first, not the repo

from benchmarks.measure import peak_rss_mib  # noqa: E402
from benchmarks.workloads import TRIVIAL_SPEC  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "results" / "reliability.json"

FAULTS_SPEC = """\
name: faults
trainable: benchmarks.workloads:faulty
metric: loss
mode: min
space:
  fault: {{grid: [none, raise, sigkill, nan]}}
  repeat: {{grid: [0, 1, 2]}}
  attempts: "{attempts}"
search: {{algorithm: grid}}
scheduler: {{name: fifo}}
stop: {{max_epochs: 5}}
failures: {{max_retries: 2}}
"""


def hostile_files(count: int, folder: Path) -> dict[str, Any]:
    """Run `count` generated malformed files through the CLI; tally exit codes, tracebacks, Ray starts."""
    sys.path.insert(0, str(ROOT))
    from tests.hostile_files import run_generated

    started = time.monotonic()
    outcomes = run_generated(count, folder)
    return {
        "files": len(outcomes),
        "categories": dict(sorted(Counter(o["category"] for o in outcomes).items())),
        "exit_2": sum(o["exit_code"] == 2 for o in outcomes),
        "named_the_key_or_file": sum(o["named"] for o in outcomes),
        "tracebacks": sum(o["traceback"] for o in outcomes),
        "ray_started": sum(o["ray_started"] for o in outcomes),
        "seconds": round(time.monotonic() - started, 1),
    }


def faults(storage: Path) -> dict[str, Any]:
    """The faults experiment: what each injected fault became."""
    from tunerd import api

    attempts = storage / "attempts"
    attempts.mkdir(parents=True)
    spec = storage / "faults.yaml"
    spec.write_text(FAULTS_SPEC.format(attempts=attempts))
    outcome = api.launch(api.load(spec, storage=str(storage)), overwrite=True, quiet=True)
    rows: dict[str, dict[str, Any]] = {}
    for trial in outcome.summary["trials"]:
        fault = trial["config"]["fault"]
        key = f"{fault}-{trial['config']['repeat']}"
        row = rows.setdefault(fault, {"trials": 0, "statuses": Counter(), "attempts": 0, "resumed_at_epoch": []})
        row["trials"] += 1
        row["statuses"][trial["status"]] += 1
        row["attempts"] += (attempts / key).read_text().count("attempt")
        if fault == "sigkill":
            row["resumed_at_epoch"].append(trial["last"].get("start"))
    for row in rows.values():
        row["statuses"] = dict(row["statuses"])
    injected = sum(row["trials"] for fault, row in rows.items() if fault != "none")
    expected = {"none": "finished", "raise": "errored", "sigkill": "finished", "nan": "diverged"}
    as_expected = all(row["statuses"] == {expected[fault]: row["trials"]} for fault, row in rows.items())
    return {"state": outcome.state, "faults_injected": injected,
            "survived": outcome.state == "finished" and as_expected and outcome.summary["best"] is not None,
            "by_fault": rows, "best_trial_fault": outcome.summary["best"]["config"]["fault"]
            if outcome.summary["best"] else None}


def load_in_fresh_process(storage: Path, trials: int) -> dict[str, Any]:
    """`load` in a new Python process, so that its peak memory is the experiment's alone (not this
    process's hypothesis runs and earlier experiments)."""
    done = subprocess.run([sys.executable, __file__, "--load-only", "--trials", str(trials), "--storage",
                           str(storage)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the load run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load(storage: Path, trials: int) -> dict[str, Any]:
    from tunerd import api

    storage.mkdir(parents=True)
    spec = storage / "load.yaml"
    spec.write_text(TRIVIAL_SPEC.format(name="load", trials=trials))
    before = peak_rss_mib()
    started = time.monotonic()
    outcome = api.launch(api.load(spec, storage=str(storage)), overwrite=True, quiet=True)
    wall = time.monotonic() - started
    summary_file = Path(outcome.folder) / "summary.json"
    summary = json.loads(summary_file.read_text())
    return {"trials": trials, "state": outcome.state, "in_summary": len(summary["trials"]),
            "finished": sum(t["status"] == "finished" for t in summary["trials"]),
            "wall_s": round(wall, 1), "driver_peak_rss_mib": round(peak_rss_mib(), 1),
            "driver_peak_rss_before_mib": round(before, 1),
            "summary_json_kib": round(summary_file.stat().st_size / 1024, 1)}


def print_table(report: dict[str, Any]) -> None:
    files = report["files"]
    print(f"\nhostile files: {files['files']} tried ({', '.join(f'{k} {v}' for k, v in files['categories'].items())})")
    print(f"  exit 2: {files['exit_2']}, named the key path or the file: {files['named_the_key_or_file']}, "
          f"tracebacks: {files['tracebacks']}, Ray started: {files['ray_started']} ({files['seconds']} s)")
    result = report["faults"]
    print(f"\nfaults: {result['faults_injected']} injected; experiment {result['state']}, best trial's fault: "
          f"{result['best_trial_fault']}; survived as expected: {result['survived']}")
    for fault, row in result["by_fault"].items():
        extra = f", resumed at epoch {row['resumed_at_epoch']}" if row["resumed_at_epoch"] else ""
        print(f"  {fault:<8} {row['trials']} trials -> {row['statuses']}, {row['attempts']} attempts{extra}")
    held = report["load"]
    print(f"\nload: {held['trials']} trials, {held['in_summary']} in summary.json ({held['finished']} finished), "
          f"state {held['state']}, {held['wall_s']} s; driver peak RSS {held['driver_peak_rss_mib']} MiB; "
          f"summary.json {held['summary_json_kib']} KiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000, help="hostile files to try (default 2000)")
    parser.add_argument("--trials", type=int, default=500, help="trials in the load experiment (default 500)")
    parser.add_argument("--output", default=str(OUTPUT))
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)  # load_in_fresh_process
    parser.add_argument("--storage", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.chdir(ROOT)  # the trainables are named benchmarks.workloads:...
    from tunerd.session import ray_session

    if args.load_only:
        with ray_session(None, None):
            print(json.dumps(load(Path(args.storage), args.trials)))
        return 0
    storage = Path(tempfile.mkdtemp(prefix="tunerd-reliability-"))
    report: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                              "python": platform.python_version()}
    print(f"hostile files: {args.files} ...", flush=True)
    report["files"] = hostile_files(args.files, storage / "files")  # before Ray: it must never start
    with ray_session(None, None):
        print("faults ...", flush=True)
        report["faults"] = faults(storage / "faults")
    print(f"load: {args.trials} trials, in a fresh process ...", flush=True)
    report["load"] = load_in_fresh_process(storage / "load", args.trials)
    print_table(report)
    from trainables.files import write_atomic

    output = Path(args.output)
    write_atomic(output, json.dumps(report, indent=2) + "\n")  # a reader never sees half a report
    print(f"\nwritten: {output}")
    ok = (report["files"]["exit_2"] == report["files"]["files"] and not report["files"]["tracebacks"]
          and not report["files"]["ray_started"] and report["faults"]["survived"]
          and report["load"]["in_summary"] == report["load"]["trials"] == report["load"]["finished"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
