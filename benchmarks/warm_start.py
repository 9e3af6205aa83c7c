"""Warm starts: does a search that starts from an earlier experiment's trials (`search.warm_start`) beat a
cold one of the same size?

For each test function (benchmarks/functions.py) and seed: a first experiment of FIRST trials (random search,
the exploration a user did earlier), then for each model-based backend a second round of SECOND trials
warm-started from it, and a cold second round of SECOND trials (the same seed and space). Everything runs
through `tunerd.api.launch` (the trainable `benchmarks.workloads:test_function`, FIFO, 2 trials at once) on
one Ray session. On `mixed` the second round's space is narrowed (lr over [3e-4, 1e-1] instead of [1e-4,
1e-1]): the first round's trials outside it are dropped, the rest mapped.

Measured: the best regret among the second round's own trials (the first round's best is not counted),
median over the seeds; the first round's own best beside them (what the user had before the second round).
Target: warm below cold on the median for every backend and function.

    python benchmarks/warm_start.py            # 5 seeds, branin and mixed
    python benchmarks/warm_start.py --seeds 2  # a look

Writes `benchmarks/results/warm_start.json` and prints the table the README quotes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.functions import PROBLEMS  # noqa: E402
from benchmarks.search_peers import launch_test_function  # noqa: E402
from trainables.files import write_atomic  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "results" / "warm_start.json"
BACKENDS = ("hyperopt", "bayesopt", "tpe", "gp")
FIRST, SECOND = 20, 10
#: the second round's space where it differs from the first's (the mapping at work)
NARROWED = {"mixed": {"lr": {"loguniform": [3.0e-4, 1.0e-1]}}}


def launch(name: str, problem: str, algorithm: str, seed: int, trials: int, storage: Path, *,
           warm: list[str] = (), narrowed: bool = False) -> dict[str, Any]:
    space = {**PROBLEMS[problem].space, **(NARROWED.get(problem, {}) if narrowed else {}), "problem": problem}
    search = {"algorithm": algorithm, "num_samples": trials, "max_concurrent": 2,
              **({"warm_start": list(warm)} if warm else {})}
    summary, _, wall_s = launch_test_function(name, space, search, seed, storage)
    values = [t.best["value"] for t in summary.trials if "value" in t.best]
    return {"best": min(values), "trials": len(values), "wall_s": wall_s,
            **({"warm_start": summary.warm_start} if summary.warm_start else {})}


def table(results: dict[str, Any], problems: list[str], seeds: list[int]) -> tuple[list[str], dict[str, Any]]:
    medians: dict[str, Any] = {}
    lines = [f"| problem (first {FIRST}, then {SECOND} trials) | first round (random) | " + " | ".join(
        f"`{b}` cold | `{b}` warm" for b in BACKENDS) + " |", "| --- " * (2 + 2 * len(BACKENDS)) + "|"]
    for problem in problems:
        optimum = PROBLEMS[problem].optimum
        medians[problem] = {}
        firsts = [results.get(f"{problem}/first/{seed}") for seed in seeds]
        medians[problem]["first"] = statistics.median(r["best"] - optimum for r in firsts) if all(firsts) else None
        cells = ["-" if medians[problem]["first"] is None else f"{medians[problem]['first']:.4f}"]
        for backend in BACKENDS:
            for kind in ("cold", "warm"):
                runs = [results.get(f"{problem}/{backend}/{kind}/{seed}") for seed in seeds]
                value = statistics.median(r["best"] - optimum for r in runs) if all(runs) else None
                medians[problem][f"{backend}/{kind}"] = value
                cell = "-" if value is None else (f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}")
                cells.append(f"**{cell}**" if kind == "warm" and value is not None and
                             value < medians[problem][f"{backend}/cold"] else cell)
        lines.append(f"| {problem} | " + " | ".join(cells) + " |")
    return lines, medians


def run(*, seeds: int = 5, problems: tuple[str, ...] = ("branin", "mixed"), output: Path | None = OUTPUT) -> bool:
    from tunerd.session import ray_session

    seed_list = list(range(seeds))
    results: dict[str, Any] = {}
    report: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                              "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
                              "seeds": seed_list, "problems": list(problems), "first": FIRST, "second": SECOND,
                              "narrowed": NARROWED, "runs": results}

    def save() -> None:
        if output is not None:
            write_atomic(output, json.dumps(report, indent=2) + "\n")

    started = time.perf_counter()
    os.chdir(ROOT)  # the trainable is benchmarks.workloads:test_function
    with tempfile.TemporaryDirectory(prefix="tunerd-warm-") as folder, ray_session(None, num_cpus=2):
        storage = Path(folder)
        for problem in problems:
            optimum = PROBLEMS[problem].optimum
            for seed in seed_list:
                first = f"{problem}-first-{seed}"
                results[f"{problem}/first/{seed}"] = launch(first, problem, "random", seed, FIRST, storage)
                for backend in BACKENDS:
                    for kind in ("cold", "warm"):
                        key = f"{problem}/{backend}/{kind}/{seed}"
                        results[key] = launch(f"{problem}-{backend}-{kind}-{seed}", problem, backend, seed, SECOND,
                                              storage, warm=[first] if kind == "warm" else [],
                                              narrowed=problem in NARROWED)
                        note = results[key].get("warm_start", [{}])[0]
                        print(f"{key}: regret {results[key]['best'] - optimum:.5f} ({results[key]['wall_s']} s"
                              + (f", {note['observations']} observations, {note['outside']} outside" if note else "")
                              + ")", flush=True)
                save()
    lines, medians = table(results, list(problems), seed_list)
    verdicts = {f"{p}/{b}": medians[p][f"{b}/warm"] < medians[p][f"{b}/cold"] for p in problems for b in BACKENDS}
    report.update(medians=medians, table=lines, warm_beats_cold=verdicts,
                  wall_s=round(time.perf_counter() - started, 1))
    save()
    print("\n".join(["", *lines, ""]))
    losers = [key for key, won in verdicts.items() if not won]
    print(f"warm beats cold on the median: {len(verdicts) - len(losers)} of {len(verdicts)}"
          + (f" (not: {', '.join(losers)})" if losers else ""))
    return all(verdicts.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", default="branin,mixed", help="comma-separated problems")
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    ok = run(seeds=args.seeds, problems=tuple(p for p in args.only.split(",") if p), output=Path(args.output))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
