"""`tunerd show NAME --plot FILE.png`: the learning curves of every trial, and the metric against each
searched hyperparameter, in one figure that reads at a glance."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from tunerd.space import Choice, Distribution, Grid, flatten, parse_space


def searched_parameters(spec: dict[str, Any]) -> dict[str, Any]:
    """The searched knobs of a resolved spec (`spec.yaml`), flattened: {"optimizer/lr": Distribution, ...}."""
    problems: list[Any] = []
    tree = parse_space(spec.get("space") or {}, "space", problems)
    if problems or not isinstance(tree, dict):  # an old or hand-edited spec.yaml: plot the curves only
        return {}
    found: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, Distribution):
            found[prefix] = node
        elif isinstance(node, (Choice, Grid)):
            options = node.options if isinstance(node, Choice) else node.values
            if not any(isinstance(option, dict) for option in options):
                found[prefix] = node  # a choice of sub-spaces is plotted through the knobs inside it
            for option in options:
                walk(option, prefix)
        elif isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}/{key}" if prefix else key)

    walk(tree, "")
    return found


def plot_experiment(shown: dict[str, Any], spec: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Draw `shown` (what `report.show` returns, with each trial's history) and write a PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric, trials = shown["metric"], shown["trials"]
    best_id = (shown.get("best") or {}).get("trial_id")
    parameters = searched_parameters(spec)
    columns = max(1, min(3, len(parameters)))
    rows = 1 + math.ceil(len(parameters) / columns)
    figure = plt.figure(figsize=(5.5 * max(2, columns), 4.0 * rows), constrained_layout=True)
    grid = figure.add_gridspec(rows, max(2, columns))
    curves = figure.add_subplot(grid[0, :])
    for trial in trials:
        points = [(h["epoch"], h[metric]) for h in trial.get("history") or []
                  if isinstance(h.get(metric), (int, float)) and "epoch" in h]
        if not points:
            continue
        epochs, values = zip(*points)
        is_best = trial["trial_id"] == best_id
        line, = curves.plot(epochs, values, linewidth=2.8 if is_best else 1.0, alpha=1.0 if is_best else 0.55,
                            color="crimson" if is_best else None, zorder=3 if is_best else 2,
                            label=f"best: trial {trial['trial_id'][-5:]}" if is_best else None)
        if trial.get("status") in ("stopped", "diverged", "errored"):
            curves.plot(epochs[-1], values[-1], marker="x", markersize=8, color=line.get_color(), zorder=4)
    curves.plot([], [], marker="x", linestyle="none", color="gray", label="stopped early / diverged / errored")
    curves.set_title(f"{shown['name']}: {metric} per epoch, {len(trials)} trials")
    curves.set_xlabel("epoch")
    curves.set_ylabel(metric)
    curves.grid(alpha=0.3)
    curves.legend(loc="best", fontsize=9)
    for index, (name, node) in enumerate(parameters.items()):
        axes = figure.add_subplot(grid[1 + index // columns, index % columns])
        _parameter_panel(axes, name, node, trials, metric, best_id)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def _parameter_panel(axes: Any, name: str, node: Any, trials: list[dict[str, Any]], metric: str,
                     best_id: str | None) -> None:
    """The best value of the metric of each trial against one searched parameter."""
    points = []
    for trial in trials:
        value = flatten(trial.get("config") or {}).get(name)
        score = trial.get(metric)
        if value is not None and isinstance(score, (int, float)):
            points.append((value, score, trial["trial_id"] == best_id))
    categorical = isinstance(node, (Choice, Grid)) or any(isinstance(v, (str, bool)) for v, _, _ in points)
    if categorical:
        labels = sorted({str(v) for v, _, _ in points})
        position = {label: i for i, label in enumerate(labels)}
        xs = [position[str(v)] for v, _, _ in points]
        axes.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0)
    else:
        xs = [v for v, _, _ in points]
        if isinstance(node, Distribution) and node.kind.startswith("log"):
            axes.set_xscale("log")
    ys = [s for _, s, _ in points]
    colours = ["crimson" if best else "tab:blue" for _, _, best in points]
    axes.scatter(xs, ys, c=colours, s=[60 if best else 25 for _, _, best in points], alpha=0.8)
    axes.set_xlabel(name)
    axes.set_ylabel(f"best {metric}")
    axes.grid(alpha=0.3)
