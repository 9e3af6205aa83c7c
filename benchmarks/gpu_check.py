"""GPU check: the quickstart experiment on the CPU, on one GPU per trial, and with trials sharing one GPU.

Runs `search_spaces/quickstart.yaml` through tunerd's Python API with the same seeded configurations
(FIFO, so every trial trains all its epochs) once per placement:
- cpu: `resources: {cpu: 1, gpu: 0}`;
- gpu-1: `resources: {cpu: 1, gpu: 1}` (one trial at a time on the GPU), AMP on;
- gpu-0.25: `resources: {cpu: 1, gpu: 0.25}` (four trials share the GPU at once), AMP on;
while a background thread samples `nvidia-smi` every 0.5 s during each GPU run: the device's memory.used
and utilization.gpu, and each process's GPU memory (torch.cuda.max_memory_allocated would only see its own
process: the trials are other processes).
Prints per run its trials per hour (trials / the experiment's wall time) and per trial: epochs/s (1 / the
median epoch time, the first epoch left out: it holds CUDA's start), samples/s (the built-ins'
`samples_per_s`, median), the best val_accuracy and wall time; then the GPU's memory and utilisation.
Writes `benchmarks/results/gpu_check.json`.

On a machine without CUDA the GPU runs are skipped (and the JSON says why); the CPU run still happens.

    python benchmarks/gpu_check.py                       # 8 trials x 15 epochs, as the quickstart
    python benchmarks/gpu_check.py --epochs 3            # a quick look
    python benchmarks/gpu_check.py --gpu-shares 0.5      # other placements
    python benchmarks/gpu_check.py --cpu-only
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
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "search_spaces" / "quickstart.yaml"
OUTPUT = ROOT / "benchmarks" / "results" / "gpu_check.json"


class GpuSampler:
    """Samples `nvidia-smi` in a background thread: device memory and utilisation, per-process memory."""

    def __init__(self, interval_s: float = 0.5) -> None:
        self.interval_s = interval_s
        self.device: list[dict[str, float]] = []  # {t, index, memory_used_mib, memory_total_mib, utilization}
        self.processes: dict[int, float] = {}  # pid -> peak used_memory (MiB)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)

    @staticmethod
    def available() -> bool:
        return shutil.which("nvidia-smi") is not None

    def __enter__(self) -> GpuSampler:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _query(self, *args: str) -> list[list[str]]:
        done = subprocess.run(["nvidia-smi", *args, "--format=csv,noheader,nounits"], capture_output=True,
                              text=True, timeout=10)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip() or f"nvidia-smi exited with {done.returncode}")
        return [[cell.strip() for cell in line.split(",")] for line in done.stdout.splitlines() if line.strip()]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = time.monotonic() - self._start
                for index, used, total, utilization in self._query(
                        "--query-gpu=index,memory.used,memory.total,utilization.gpu"):
                    self.device.append({"t": round(now, 2), "index": int(index), "memory_used_mib": float(used),
                                        "memory_total_mib": float(total), "utilization": _number(utilization)})
                for pid, used in self._query("--query-compute-apps=pid,used_memory"):
                    if _number(used) is not None:
                        self.processes[int(pid)] = max(self.processes.get(int(pid), 0.0), float(used))
            except Exception as exc:  # a sampler must never take the benchmark down; say what went wrong
                if len(self.errors) < 5:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(self.interval_s)

    def report(self) -> dict[str, Any]:
        if not self.device:
            return {"samples": 0, "errors": self.errors}
        utilization = [s["utilization"] for s in self.device if s["utilization"] is not None]
        busy = [u for u in utilization if u > 0]
        return {
            "samples": len(self.device),
            "interval_s": self.interval_s,
            "memory_total_mib": max(s["memory_total_mib"] for s in self.device),
            "peak_memory_used_mib": max(s["memory_used_mib"] for s in self.device),
            "utilization_mean": round(statistics.mean(utilization), 1) if utilization else None,
            "utilization_mean_when_busy": round(statistics.mean(busy), 1) if busy else None,
            "utilization_max": max(utilization) if utilization else None,
            "process_peak_memory_mib": dict(sorted(self.processes.items())),
            "errors": self.errors,
        }


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None


def cuda_status() -> tuple[bool, str]:
    """(usable, what this machine has) for the GPU runs."""
    try:
        import torch
    except ImportError as exc:
        return False, f"torch is not installed ({exc})"
    if not torch.cuda.is_available():
        return False, f"CUDA is not available (torch {torch.__version__}, built for CUDA {torch.version.cuda})"
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return True, f"{len(names)} x {names[0]} (torch {torch.__version__}, CUDA {torch.version.cuda})"


def overrides(epochs: int, trials: int, cpu: float, gpu: float) -> list[str]:
    """`--set`-style overrides: the same seeded configurations in every run, every trial trained fully;
    AMP on where the trials have a GPU (it is what users get there by default; said explicitly here)."""
    return [f"search.num_samples={trials}", "scheduler.name=fifo", f"space.epochs={epochs}",
            f"stop.max_epochs={epochs}", f"resources.cpu={cpu}", f"resources.gpu={gpu}", "tensorboard=false",
            *(["space.amp=true"] if gpu else [])]


def trial_rows(outcome: Any) -> list[dict[str, Any]]:
    """Per trial: epochs, epochs/s (steady state), samples/s, best val_accuracy, wall time, from Ray's results."""
    rows = []
    for trial in outcome.summary["trials"]:
        results_file = Path(outcome.folder) / f"trial_{trial['trial_id']}" / "result.json"
        results = [json.loads(line) for line in results_file.read_text().splitlines() if line.strip()]
        epoch_times = [r["time_this_iter_s"] for r in results]
        steady = epoch_times[1:] or epoch_times
        samples = [r["samples_per_s"] for r in results if isinstance(r.get("samples_per_s"), (int, float))]
        rows.append({
            "trial_id": trial["trial_id"],
            "status": trial["status"],
            "epochs": len(results),
            "epochs_per_s": round(1.0 / statistics.median(steady), 3) if steady else None,
            "first_epoch_s": round(epoch_times[0], 3) if epoch_times else None,
            "samples_per_s": round(statistics.median(samples), 1) if samples else None,
            "best_val_accuracy": (trial.get("best") or {}).get("val_accuracy"),
            "wall_s": round(results[-1]["time_total_s"], 2) if results else None,
            "config": trial["config"],
        })
    return rows


def run_one(name: str, args: argparse.Namespace, storage: str, gpu: float) -> dict[str, Any]:
    from tunerd import api

    experiment = api.load(QUICKSTART, overrides(args.epochs, args.trials, args.cpu, gpu),
                          name=f"gpu-check-{name}", storage=storage)
    started = time.monotonic()
    outcome = api.launch(experiment, overwrite=True, quiet=True)
    wall = time.monotonic() - started
    rows = trial_rows(outcome)
    rates = [r["epochs_per_s"] for r in rows if r["epochs_per_s"]]
    return {"state": outcome.state, "resources": {"cpu": args.cpu, "gpu": gpu}, "amp": bool(gpu),
            "experiment_wall_s": round(wall, 1), "trials_per_hour": round(len(rows) / wall * 3600),
            "mean_epochs_per_s": round(statistics.mean(rates), 3) if rates else None,
            "folder": str(outcome.folder), "trials": rows}


def run_on_gpu(name: str, args: argparse.Namespace, storage: str, share: float) -> dict[str, Any]:
    """One GPU run, with nvidia-smi sampled while it runs."""
    sampler = GpuSampler()
    if not sampler.available():
        run = run_one(name, args, storage, gpu=share)
        run["nvidia_smi"] = {"samples": 0, "errors": ["nvidia-smi is not on PATH"]}
        return run
    with sampler:
        run = run_one(name, args, storage, gpu=share)
    run["nvidia_smi"] = sampler.report()
    return run


def print_table(report: dict[str, Any]) -> None:
    print(f"\n{'run':<9} {'trial':<12} {'epochs':>6} {'epochs/s':>9} {'1st epoch s':>11} {'samples/s':>10} "
          f"{'best val_acc':>12} {'wall s':>7}")
    for name, run in report["runs"].items():
        if "skipped" in run:
            print(f"{name:<9} skipped: {run['skipped']}")
            continue
        for row in run.get("trials", []):
            accuracy = f"{row['best_val_accuracy']:.4f}" if row["best_val_accuracy"] is not None else "-"
            print(f"{name:<9} {row['trial_id'][-12:]:<12} {row['epochs']:>6} {row['epochs_per_s'] or 0:>9.2f} "
                  f"{row['first_epoch_s'] or 0:>11.2f} {row['samples_per_s'] or 0:>10.0f} {accuracy:>12} "
                  f"{row['wall_s'] or 0:>7.1f}")
    print(f"\n{'run':<9} {'resources':<18} {'trials':>6} {'wall s':>7} {'trials/hour':>11} {'epochs/s/trial':>14}")
    for name, run in report["runs"].items():
        if "skipped" in run:
            continue
        resources = f"cpu {run['resources']['cpu']:g}, gpu {run['resources']['gpu']:g}"
        print(f"{name:<9} {resources:<18} {len(run['trials']):>6} {run['experiment_wall_s']:>7.1f} "
              f"{run['trials_per_hour']:>11} {run['mean_epochs_per_s'] or 0:>14.2f}")
    for name, run in report["runs"].items():
        monitor = run.get("nvidia_smi") or {}
        if monitor.get("samples"):
            print(f"\n{name} on {report['gpu']}: peak memory.used {monitor['peak_memory_used_mib']:.0f} of "
                  f"{monitor['memory_total_mib']:.0f} MiB; utilization mean {monitor['utilization_mean']}% "
                  f"(when busy {monitor['utilization_mean_when_busy']}%), max {monitor['utilization_max']}% "
                  f"({monitor['samples']} nvidia-smi samples, every {monitor['interval_s']} s)")
            for pid, peak in monitor["process_peak_memory_mib"].items():
                print(f"  process {pid}: peak GPU memory {peak:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="epochs per trial (default 15, as the quickstart)")
    parser.add_argument("--trials", type=int, default=8, help="trials per run (default 8)")
    parser.add_argument("--gpu-shares", type=lambda text: [float(x) for x in text.split(",")], default=[1.0, 0.25],
                        help="resources.gpu of a trial, one GPU run each (default 1,0.25)")
    parser.add_argument("--cpu", type=float, default=1, help="resources.cpu of a trial, every run (default 1)")
    parser.add_argument("--cpu-only", action="store_true", help="skip the GPU runs")
    parser.add_argument("--storage", default=None, help="where the experiments go (default: a temporary folder)")
    parser.add_argument("--output", default=str(OUTPUT), help=f"the JSON report (default {OUTPUT})")
    args = parser.parse_args(argv)

    try:
        from tunerd.session import ray_session
    except ImportError as exc:  # e.g. a GPU machine without Ray: say so instead of a traceback
        print(f"gpu_check: cannot import tunerd and Ray ({exc}); pip install -e . first", file=sys.stderr)
        return 2
    usable, gpu = cuda_status()
    storage = args.storage or tempfile.mkdtemp(prefix="tunerd-gpu-check-")
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.processor() or platform.system()}, "
                   f"{_cpu_count()} CPUs",
        "python": platform.python_version(), "gpu": gpu, "experiment": str(QUICKSTART.relative_to(ROOT)),
        "epochs": args.epochs, "trials": args.trials, "storage": storage, "runs": {},
    }
    with ray_session(None, None):  # one Ray for every run; it sees every CPU and GPU of the machine
        print(f"cpu: {args.trials} trials x {args.epochs} epochs, resources cpu {args.cpu:g}, gpu 0", flush=True)
        report["runs"]["cpu"] = run_one("cpu", args, storage, gpu=0)
        for share in args.gpu_shares:
            name = f"gpu-{share:g}"
            if args.cpu_only or not usable:
                reason = "--cpu-only" if args.cpu_only else gpu
                report["runs"][name] = {"skipped": reason}
                print(f"{name} skipped: {reason}", flush=True)
                continue
            print(f"{name}: {args.trials} trials x {args.epochs} epochs, resources cpu {args.cpu:g}, "
                  f"gpu {share:g}, AMP on, on {gpu}", flush=True)
            report["runs"][name] = run_on_gpu(name, args, storage, share)
    print_table(report)
    from trainables.files import write_atomic

    output = Path(args.output)
    write_atomic(output, json.dumps(report, indent=2) + "\n")  # a reader never sees half a report
    print(f"\nwritten: {output}")
    failed = [name for name, run in report["runs"].items() if run.get("state", "finished") != "finished"]
    return 1 if failed else 0


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


if __name__ == "__main__":
    sys.exit(main())
