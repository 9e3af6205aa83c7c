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
  are not in it), wall time, the record's size;
- soak (`--soak`, its own run, written to `benchmarks/results/soak.json`): `tunerd launch` of one experiment
  of `--soak-trials` (1,000) three-epoch trials, about one in eight carrying a random fault (raise, SIGKILL,
  NaN, hang: `benchmarks.workloads:soak`), its driver killed with SIGKILL half way and the experiment
  finished with `tunerd resume`; then the accounting: every trial in `summary.json` exactly once and in Ray
  Tune's saved state, each become what its fault makes it, the attempts Ray made, no configuration
  suggested twice, no trial index shared, and `summary.json` agreeing with Ray's per-trial results epoch
  by epoch.

    python benchmarks/reliability.py                    # 2,000 files, the faults, 500 trials
    python benchmarks/reliability.py --files 200 --trials 50
    python benchmarks/reliability.py --soak             # 1,000 trials, a kill -9 and a resume
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
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
SOAK_OUTPUT = ROOT / "benchmarks" / "results" / "soak.json"

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


SOAK_SPEC = """\
name: soak
trainable: benchmarks.workloads:soak
metric: loss
mode: min
seed: {seed}
space:
  x: {{uniform: [0, 4]}}
  y: {{loguniform: [0.01, 10]}}
  attempts: "{attempts}"
search: {{algorithm: {algorithm}, num_samples: {trials}}}
scheduler: {{name: fifo}}
stop: {{max_epochs: 3}}
failures: {{max_retries: 2, hang_timeout_s: {hang_timeout_s}}}
tensorboard: true
"""
#: what each injected fault must make of a trial: its status and the epochs it reports in the end
SOAK_EXPECTED = {"none": ("finished", 3), "raise": ("errored", 0), "sigkill": ("finished", 3),
                 "nan": ("diverged", 2), "hang": ("finished", 3)}


def _cli(*args: str, **kwargs: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tunerd.cli", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def _read_summary(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):  # not written yet (its writes are atomic: never half a file)
        return {}


def soak(storage: Path, trials: int, *, algorithm: str, hang_timeout_s: float, seed: int) -> dict[str, Any]:
    """Launch the soak experiment, kill its driver (SIGKILL) once half the trials have ended, resume it, and
    account for every trial."""
    attempts = storage / "attempts"
    attempts.mkdir(parents=True)
    spec = storage / "soak.yaml"
    spec.write_text(SOAK_SPEC.format(seed=seed, attempts=attempts, algorithm=algorithm, trials=trials,
                                     hang_timeout_s=hang_timeout_s))
    folder = storage / "results" / "soak"
    started = time.monotonic()
    driver = _cli("launch", str(spec), "--storage", str(storage / "results"), "--quiet")
    ended_at_kill = 0
    try:
        while driver.poll() is None:
            ended_at_kill = sum(t["status"] != "running" for t in _read_summary(folder).get("trials", []))
            if ended_at_kill >= trials // 2:
                os.kill(driver.pid, signal.SIGKILL)
                break
            time.sleep(1.0)
        _, first_err = driver.communicate(timeout=120)
    finally:
        driver.kill()
    if driver.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the driver ended by itself (exit {driver.returncode}) before the kill:\n"
                           f"{first_err[-3000:]}")
    killed_after = time.monotonic() - started
    at_kill = _read_summary(folder)
    resumed = _cli("resume", "soak", "--storage", str(storage / "results"), "--quiet")
    _, resume_err = resumed.communicate(timeout=3 * 3600)
    wall = time.monotonic() - started
    if resumed.returncode != 0:  # e.g. exit 2: the kill landed while Ray copied its state (tunerd.raystate)
        lines = resume_err.strip().splitlines() or [""]
        return {"trials": trials, "resume_exit": resumed.returncode, "resume_error": lines[-1][:2000],
                "driver_killed_after_s": round(killed_after, 1), "trials_ended_at_kill": ended_at_kill}
    report = account(folder, attempts, trials)
    report.update({
        "algorithm": algorithm, "hang_timeout_s": hang_timeout_s, "seed": seed,
        "driver_killed_after_s": round(killed_after, 1), "trials_ended_at_kill": ended_at_kill,
        "trials_in_summary_at_kill": len(at_kill.get("trials", [])),
        "running_at_kill": sum(t["status"] == "running" for t in at_kill.get("trials", [])),
        "wall_s": round(wall, 1), "resume_exit": resumed.returncode,
        "hang_warnings": sum("silent for" in line for line in (first_err + resume_err).splitlines()),
        "lost_with_the_driver": sum(int(m) for m in re.findall(r"(\d+) trial\(s\) started after Ray Tune last "
                                                               r"saved its state", resume_err)),
    })
    return report


def _ray_rows(trial_folder: Path) -> dict[int, dict[str, Any]]:
    """A trial's reports in Ray Tune's own `result.json`, by epoch (a retried epoch: its last report)."""
    rows: dict[int, dict[str, Any]] = {}
    result = trial_folder / "result.json"
    for line in (result.read_text().splitlines() if result.exists() else []):
        if line.strip():
            row = json.loads(line)
            rows[row["epoch"]] = row
    return rows


def _same(ours: Any, theirs: Any) -> bool:
    """One epoch's loss in summary.json and in Ray's result.json: equal, or non-finite in Ray's and null in
    summary.json (strict JSON has no NaN: tunerd writes it as null)."""
    return ours == theirs or (ours is None and isinstance(theirs, float) and not math.isfinite(theirs))


def account(folder: Path, attempts: Path, trials: int) -> dict[str, Any]:
    """The soak's checks, from the files alone: summary.json, Ray's trial folders, the attempt counters."""
    from benchmarks.workloads import soak_fault

    summary = _read_summary(folder)
    records = summary.get("trials", [])
    ids = [t["trial_id"] for t in records]
    from ray.tune import ExperimentAnalysis

    ray_ids = {trial.trial_id for trial in ExperimentAnalysis(str(folder)).trials}  # Ray Tune's saved state
    folders = {p.name.removeprefix("trial_") for p in folder.glob("trial_*") if p.is_dir()}
    by_fault: dict[str, dict[str, Any]] = {}
    unexpected, disagree = [], []
    for record in records:
        trial_id = record["trial_id"]
        fault = soak_fault(trial_id)
        counter = attempts / trial_id
        tried = counter.read_text().count("attempt") if counter.exists() else 0
        row = by_fault.setdefault(fault, {"trials": 0, "statuses": Counter(), "attempts": Counter()})
        row["trials"] += 1
        row["statuses"][record["status"]] += 1
        row["attempts"][tried] += 1
        status, epochs = SOAK_EXPECTED[fault]
        if record["status"] != status or record["epochs"] != epochs:
            unexpected.append({"trial_id": trial_id, "fault": fault, "status": record["status"],
                               "epochs": record["epochs"]})
        rows = _ray_rows(folder / f"trial_{trial_id}")
        ours = {h["epoch"]: h.get("loss") for h in record["history"]}
        theirs = {epoch: row.get("loss") for epoch, row in rows.items()}
        errored_in_ray = (folder / f"trial_{trial_id}" / "error.txt").exists()  # also once retried
        if (ours.keys() != theirs.keys() or not all(_same(ours[e], theirs[e]) for e in ours)
                or (record["status"] == "errored" and not errored_in_ray)):
            disagree.append({"trial_id": trial_id, "summary": ours, "ray": theirs, "status": record["status"],
                             "ray_error": errored_in_ray})
    for row in by_fault.values():
        row["statuses"] = dict(row["statuses"])
        row["attempts"] = {str(k): v for k, v in sorted(row["attempts"].items())}
    configs = [json.dumps({k: v for k, v in t["config"].items() if k != "attempts"}, sort_keys=True)
               for t in records]
    return {
        "trials": trials, "state": summary.get("state"), "in_summary": len(records),
        "distinct_in_summary": len(set(ids)), "ray_trials": len(ray_ids), "ray_trial_folders": len(folders),
        "folders_of_trials_ray_lost": sorted(folders - ray_ids),
        "indices_shared": len(records) - len({t["index"] for t in records}),
        "summary_matches_ray": set(ids) == ray_ids,
        "configs_repeated": len(configs) - len(set(configs)),
        "by_fault": dict(sorted(by_fault.items())),
        "not_as_expected": unexpected[:20], "not_as_expected_count": len(unexpected),
        "disagree_with_ray": disagree[:20], "disagree_with_ray_count": len(disagree),
        "summary_json_kib": round((folder / "summary.json").stat().st_size / 1024, 1),
    }


def soak_passed(report: dict[str, Any]) -> bool:
    return (report["resume_exit"] == 0 and report["state"] == "finished"
            and report["in_summary"] == report["distinct_in_summary"] == report["ray_trials"] == report["trials"]
            and report["summary_matches_ray"]
            and not report["configs_repeated"] and not report["indices_shared"] and not report["not_as_expected_count"]
            and not report["disagree_with_ray_count"])


def print_soak(report: dict[str, Any]) -> None:
    if report["resume_exit"] != 0:
        print(f"\nsoak: the driver was killed after {report['driver_killed_after_s']} s; tunerd resume exited "
              f"{report['resume_exit']}: {report['resume_error']}")
        return
    print(f"\nsoak: {report['trials']} trials ({report['algorithm']}), driver killed (SIGKILL) after "
          f"{report['driver_killed_after_s']} s with {report['trials_ended_at_kill']} ended and "
          f"{report['running_at_kill']} running; resumed; {report['wall_s']} s in all; state {report['state']}")
    print(f"  in summary.json: {report['in_summary']} ({report['distinct_in_summary']} distinct), in Ray Tune's "
          f"state: {report['ray_trials']}, the same trials: {report['summary_matches_ray']}; trials lost with "
          f"the driver (run again as new trials): {report['lost_with_the_driver']}, their folders left: "
          f"{len(report['folders_of_trials_ray_lost'])}; "
          f"configurations repeated: {report['configs_repeated']}; trial indices shared: {report['indices_shared']}")
    for fault, row in report["by_fault"].items():
        print(f"  {fault:<8} {row['trials']:>4} trials -> {row['statuses']}; attempts (count: trials) "
              f"{row['attempts']}")
    print(f"  not as their fault predicts: {report['not_as_expected_count']}; summary.json disagreeing with "
          f"Ray's result.json: {report['disagree_with_ray_count']}; hang warnings: {report['hang_warnings']}")
    print(f"  passed: {soak_passed(report)}")


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
    parser.add_argument("--output", default=None, help="the JSON report (default: benchmarks/results/"
                                                        "reliability.json, or soak.json with --soak)")
    parser.add_argument("--soak", action="store_true", help="run the soak instead (1,000 trials, faults, a kill "
                                                            "-9 of the driver and a resume)")
    parser.add_argument("--soak-trials", type=int, default=1000, help="trials in the soak (default 1000)")
    parser.add_argument("--soak-algorithm", default="hyperopt", help="the soak's search.algorithm")
    parser.add_argument("--hang-timeout", type=float, default=5.0,
                        help="the soak's failures.hang_timeout_s (default 5 s)")
    parser.add_argument("--seed", type=int, default=0)
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
                              "python": platform.python_version(), "date": time.strftime("%Y-%m-%d")}
    from trainables.files import write_atomic

    if args.soak:
        print(f"soak: {args.soak_trials} trials, storage {storage} ...", flush=True)
        report["soak"] = soak(storage / "soak", args.soak_trials, algorithm=args.soak_algorithm,
                              hang_timeout_s=args.hang_timeout, seed=args.seed)
        print_soak(report["soak"])
        output = Path(args.output or SOAK_OUTPUT)
        write_atomic(output, json.dumps(report, indent=2) + "\n")
        print(f"\nwritten: {output}")
        return 0 if soak_passed(report["soak"]) else 1
    print(f"hostile files: {args.files} ...", flush=True)
    report["files"] = hostile_files(args.files, storage / "files")  # before Ray: it must never start
    with ray_session(None, None):
        print("faults ...", flush=True)
        report["faults"] = faults(storage / "faults")
    print(f"load: {args.trials} trials, in a fresh process ...", flush=True)
    report["load"] = load_in_fresh_process(storage / "load", args.trials)
    print_table(report)
    output = Path(args.output or OUTPUT)
    write_atomic(output, json.dumps(report, indent=2) + "\n")  # a reader never sees half a report
    print(f"\nwritten: {output}")
    ok = (report["files"]["exit_2"] == report["files"]["files"] and not report["files"]["tracebacks"]
          and not report["files"]["ray_started"] and report["faults"]["survived"]
          and report["load"]["in_summary"] == report["load"]["trials"] == report["load"]["finished"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
