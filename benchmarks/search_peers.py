"""Search against the peers: every tunerd search algorithm (and `auto`) against Optuna's samplers run directly,
on test functions with known optima (benchmarks/functions.py), with equal budgets, one trial at a time.

- tunerd: `tunerd.api.launch` of an experiment whose trainable is `benchmarks.workloads:test_function`
  (one report per trial), `max_concurrent: 1`, FIFO, on one Ray session: what a user gets;
- Optuna 5, in-process, as a user writes it: `study.optimize` over the same space (tunerd's own
  define-by-run encoding of it, `tunerd.searchers._optuna.DefineByRun`: `suggest_float`, `suggest_int`,
  `suggest_categorical`), with `TPESampler(seed)`, `GPSampler(seed)` and `RandomSampler(seed)`.
Regret = best value found - the known optimum; median over the seeds.

Targets (issue 14): on every function `auto`'s median regret <= the best Optuna sampler's median regret
+ 0.01, and `tpe`'s <= Optuna TPE's + 0.02. Also measured: the time bayesopt takes per suggestion with 100
observations (target <= 0.1 s) next to Optuna's GP, on Hartmann-6, in the same run (`--baseline DIR` adds
another checkout's bayesopt, e.g. the previous release).

    python benchmarks/search_peers.py                 # 5 seeds, every function: about an hour on 2 cores
    python benchmarks/search_peers.py --quick         # 2 seeds, branin and mixed: a look
    python benchmarks/search_peers.py --continue      # go on from the partial results file

Writes `benchmarks/results/search_peers.json` (after every run, so `--continue` can pick up) and prints the
table the README quotes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.functions import PROBLEMS, Problem  # noqa: E402
from trainables.files import write_atomic  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "results" / "search_peers.json"
TUNERD = ("random", "hyperopt", "bayesopt", "tpe", "gp", "cmaes", "auto")
OPTUNA = ("optuna-random", "optuna-tpe", "optuna-gp")
AUTO_SLACK, TPE_SLACK, SUGGEST_TARGET_S = 0.01, 0.02, 0.1


def applicable(algorithm: str, problem: Problem) -> bool:
    return algorithm != "cmaes" or problem.numeric


def run_tunerd(problem: Problem, algorithm: str, seed: int, storage: Path) -> dict[str, Any]:
    name = f"{problem.name}-{algorithm}-{seed}"
    search = {"algorithm": algorithm, "num_samples": problem.budget, "max_concurrent": 1}
    summary, experiment, wall_s = launch_test_function(name, {**problem.space, "problem": problem.name}, search,
                                                       seed, storage)
    values = [t.best["value"] for t in sorted(summary.trials, key=lambda t: t.index) if "value" in t.best]
    return {"best": min(values), "trials": len(values), "wall_s": wall_s, "ran": experiment.algorithm.name}


def launch_test_function(name: str, space: dict[str, Any], search: dict[str, Any], seed: int,
                         storage: Path) -> tuple[Any, Any, float]:
    """`tunerd.api.launch` of an experiment whose trainable is `benchmarks.workloads:test_function` (one report
    per trial, FIFO): its summary, the loaded experiment, and the seconds it took."""
    import yaml

    from tunerd import api
    from tunerd.options import RunOptions

    spec = {"name": name, "trainable": "benchmarks.workloads:test_function", "metric": "value", "mode": "min",
            "seed": seed, "space": space, "search": search, "scheduler": {"name": "fifo"}, "stop": {"max_epochs": 1},
            "failures": {"max_retries": 0}, "tensorboard": False}
    path = storage / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    experiment = api.load(path, storage=str(storage))
    started = time.perf_counter()
    outcome = api.launch(experiment, RunOptions(quiet=True, overwrite=True))
    return outcome.record.summary(), experiment, round(time.perf_counter() - started, 2)


def run_optuna(problem: Problem, sampler_name: str, seed: int) -> dict[str, Any]:
    import optuna

    from tunerd.searchers._optuna import CONFIG_KEY, DefineByRun
    from tunerd.space import parse_space

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problems: list = []
    define = DefineByRun(parse_space(problem.space, "space", problems))
    samplers = {"optuna-random": optuna.samplers.RandomSampler, "optuna-tpe": optuna.samplers.TPESampler,
                "optuna-gp": optuna.samplers.GPSampler}
    study = optuna.create_study(direction="minimize", sampler=samplers[sampler_name](seed=seed))
    started = time.perf_counter()
    study.optimize(lambda trial: problem.function(define(trial)[CONFIG_KEY]), n_trials=problem.budget)
    return {"best": study.best_value, "trials": len(study.trials), "wall_s": round(time.perf_counter() - started, 2)}


_BAYESOPT_DIRECT = """
import importlib.util, json, statistics, sys, time
sys.path.insert(0, {root!r})
spec = importlib.util.spec_from_file_location("peer_functions", {functions!r})  # this checkout's problems
functions = sys.modules["peer_functions"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(functions)
PROBLEMS = functions.PROBLEMS
from tunerd.space import parse_space
try:
    from tunerd.searchers._bayesopt import BayesOptSearcher
except ImportError:  # before the search backends were modules of their own
    from tunerd.searchers.bayesopt import BayesOptSearcher

def search(problem, seed, trials):
    problems = []
    searcher = BayesOptSearcher(parse_space(problem.space, "space", problems), metric="value", mode="min", seed=seed)
    values, times = [], []
    for i in range(trials):
        started = time.perf_counter()
        config = searcher.suggest(f"t{{i}}")
        times.append(time.perf_counter() - started)
        values.append(problem.function(config))
        searcher.on_trial_complete(f"t{{i}}", {{"value": values[-1]}})
    return min(values) - problem.optimum, times

times = [t for seed in range(3) for t in search(PROBLEMS["hartmann6"], seed, 120)[1][100:]]
report = {{"mean_s_at_100": statistics.mean(times), "regrets": {{}}}}
for name in {problems!r}:
    problem = PROBLEMS[name]
    report["regrets"][name] = [search(problem, seed, problem.budget)[0] for seed in {seeds!r}]
print(json.dumps(report))
"""

_OPTUNA_GP_COST = """
import json, statistics, sys, time
import optuna
sys.path.insert(0, {root!r})
from benchmarks.functions import PROBLEMS
problem = PROBLEMS["hartmann6"]
optuna.logging.set_verbosity(optuna.logging.WARNING)
times = []
for seed in range(3):
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed))
    for i in range(120):
        started = time.perf_counter()
        trial = study.ask()
        config = {{f"x{{j}}": trial.suggest_float(f"x{{j}}", 0, 1) for j in range(6)}}
        if i >= 100:
            times.append(time.perf_counter() - started)
        study.tell(trial, problem.function(config))
print(json.dumps({{"mean_s_at_100": statistics.mean(times), "median_s_at_100": statistics.median(times)}}))
"""


def suggestion_costs(baseline: Path | None, *, seeds: list[int] | None = None) -> dict[str, Any]:
    """Seconds per suggestion with 100 to 119 observations on Hartmann-6 (3 seeds), each in a fresh process, side
    by side: tunerd's
    bayesopt, Optuna's GP and, with `baseline`, another checkout's bayesopt, which then also searches Branin
    and Hartmann-6 directly (no Ray), as this checkout's does, over `seeds`: its quality next to its cost."""
    direct = {"functions": str(ROOT / "benchmarks" / "functions.py"), "seeds": seeds or [],
              "problems": ("branin", "hartmann6") if baseline is not None else ()}
    runs = {"bayesopt": (_BAYESOPT_DIRECT, ROOT, direct), "optuna-gp": (_OPTUNA_GP_COST, ROOT, {})}
    if baseline is not None:
        runs["bayesopt (baseline)"] = (_BAYESOPT_DIRECT, baseline, direct)
    costs = {}
    for name, (template, root, values) in runs.items():
        env = {**os.environ, "PYTHONPATH": str(root)}
        done = subprocess.run([sys.executable, "-c", template.format(root=str(root), **values)], capture_output=True,
                              text=True, env=env, timeout=3600, cwd=root)
        if done.returncode != 0:
            raise RuntimeError(f"{name}: {done.stderr[-800:]}")
        costs[name] = json.loads(done.stdout.strip().splitlines()[-1])
        regrets = {problem: statistics.median(values) for problem, values in costs[name].get("regrets", {}).items()}
        print(f"suggestion cost, {name}: {costs[name]['mean_s_at_100']:.3f} s (mean of suggestions 101-120, 3 seeds)"
              + (f"; median regret, direct: {regrets}" if regrets else ""), flush=True)
    return costs


def table(results: dict[str, Any], problems: list[str], seeds: list[int]) -> tuple[list[str], dict]:
    medians: dict[str, dict[str, float | None]] = {}
    for problem in problems:
        optimum = PROBLEMS[problem].optimum
        medians[problem] = {}
        for algorithm in (*TUNERD, *OPTUNA):
            runs = [results.get(f"{problem}/{algorithm}/{seed}") for seed in seeds]
            medians[problem][algorithm] = (statistics.median(r["best"] - optimum for r in runs)
                                           if all(runs) else None)
    header = "| problem (trials) | " + " | ".join(f"`{a}`" if a in TUNERD else a for a in (*TUNERD, *OPTUNA)) + " |"
    lines = [header, "| --- " * (1 + len(TUNERD) + len(OPTUNA)) + "|"]
    for problem in problems:
        cells = [_regret(medians[problem][a]) for a in (*TUNERD, *OPTUNA)]
        lines.append(f"| {problem} ({PROBLEMS[problem].budget}) | " + " | ".join(cells) + " |")
    return lines, medians


def _regret(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"


def targets(medians: dict[str, dict[str, float | None]]) -> list[dict[str, Any]]:
    rows = []
    for problem, row in medians.items():
        best_optuna = min(v for a, v in row.items() if a in OPTUNA and v is not None)
        rows.append({"target": f"{problem}: auto's median regret <= the best Optuna sampler's + {AUTO_SLACK}",
                     "measured": row["auto"], "threshold": best_optuna + AUTO_SLACK,
                     "pass": row["auto"] is not None and row["auto"] <= best_optuna + AUTO_SLACK})
        rows.append({"target": f"{problem}: tpe's median regret <= Optuna TPE's + {TPE_SLACK}",
                     "measured": row["tpe"], "threshold": row["optuna-tpe"] + TPE_SLACK,
                     "pass": row["tpe"] is not None and row["tpe"] <= row["optuna-tpe"] + TPE_SLACK})
    return rows


def run(quick: bool = False, *, seeds: int | None = None, output: Path | None = OUTPUT, resume: bool = False,
        baseline: Path | None = None, only: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    from tunerd.session import ray_session

    seed_list = list(range(seeds or (2 if quick else 5)))
    problems = list(only or (("branin", "mixed") if quick else PROBLEMS))
    previous = json.loads(output.read_text()) if resume and output is not None and output.exists() else {}
    results: dict[str, Any] = previous.get("runs", {})
    report: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                              "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"),
                              "seeds": seed_list, "problems": problems, "runs": results}

    def save() -> None:
        if output is not None:
            write_atomic(output, json.dumps(report, indent=2) + "\n")

    os.chdir(ROOT)  # the trainable is benchmarks.workloads:test_function
    with tempfile.TemporaryDirectory(prefix="tunerd-peers-") as folder, ray_session(None, num_cpus=2):
        for problem_name in problems:
            problem = PROBLEMS[problem_name]
            for seed in seed_list:
                for algorithm in (*TUNERD, *OPTUNA):
                    key = f"{problem_name}/{algorithm}/{seed}"
                    if key in results or not applicable(algorithm, problem):
                        continue
                    results[key] = (run_optuna(problem, algorithm, seed) if algorithm in OPTUNA
                                    else run_tunerd(problem, algorithm, seed, Path(folder)))
                    done, ran = results[key], f", ran {results[key]['ran']}" if "ran" in results[key] else ""
                    print(f"{key}: regret {done['best'] - problem.optimum:.5f} ({done['wall_s']} s{ran})", flush=True)
                    save()
    report["suggestion_cost"] = suggestion_costs(baseline, seeds=seed_list)
    lines, medians = table(results, problems, seed_list)
    rows = targets(medians)
    cost = report["suggestion_cost"]["bayesopt"]["mean_s_at_100"]
    rows.append({"target": "bayesopt: seconds per suggestion at 100 observations (Hartmann-6)", "measured": cost,
                 "threshold": SUGGEST_TARGET_S, "pass": cost <= SUGGEST_TARGET_S})
    report.update(medians=medians, table=lines, targets=rows,
                  auto_chose={p: results.get(f"{p}/auto/{seed_list[0]}", {}).get("ran") for p in problems})
    save()
    print("\n".join(["", *lines, ""]))
    for row in rows:
        print(f"{row['target']}: {row['measured']:.4g} vs {row['threshold']:.4g}: {'PASS' if row['pass'] else 'FAIL'}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, branin and mixed")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--only", default="", help="comma-separated problems")
    parser.add_argument("--continue", dest="resume", action="store_true", help="go on from the results file")
    parser.add_argument("--baseline", default=None, metavar="DIR", help="another checkout's bayesopt, timed too")
    parser.add_argument("--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    rows = run(args.quick, seeds=args.seeds, output=Path(args.output), resume=args.resume,
               baseline=Path(args.baseline).resolve() if args.baseline else None,
               only=tuple(p for p in args.only.split(",") if p))
    return 0 if all(row["pass"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
