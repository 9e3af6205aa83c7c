"""`tunerd show NAME --plot FILE.png`: the learning curves of every trial, with several objectives the
Pareto front, and the metric against each searched hyperparameter, in one figure that reads at a glance."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunerd.space import Choice, Distribution, Grid, flatten, parse_space
from tunerd.summary import TrialStatus

if TYPE_CHECKING:
    from tunerd.report import Shown, ShownTrial


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


def plot_experiment(shown: Shown, spec: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Draw `shown` (what `report.show` returns: the trials ranked, with their histories) and write a PNG to
    `path`. Trials are named by their id, as `show` prints them."""
    import matplotlib.pyplot as plt

    figure = draw(shown, spec)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target


def draw(shown: Shown, spec: dict[str, Any]) -> Any:
    """The figure `plot_experiment` writes (a matplotlib Figure; close it with `plt.close`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    summary, trials = shown.summary, shown.trials
    metric = summary.metric
    best_id = summary.best.trial_id if summary.best else None
    parameters = searched_parameters(spec)
    goal = summary.goal()
    columns = max(1, min(3, len(parameters)))
    top = 2 if goal.is_multi else 1
    rows = top + math.ceil(len(parameters) / columns)
    figure = plt.figure(figsize=(5.5 * max(2, columns), 4.0 * rows), constrained_layout=True)
    grid = figure.add_gridspec(rows, max(2, columns))
    if goal.is_multi:
        _front_panel(figure.add_subplot(grid[0, :]), summary, goal)
    curves = figure.add_subplot(grid[top - 1, :])
    for row in trials:
        trial = row.trial
        points = [(h["epoch"], h[metric]) for h in trial.history
                  if isinstance(h.get(metric), (int, float)) and "epoch" in h]
        if not points:
            continue
        epochs, values = zip(*points)
        is_best = trial.trial_id == best_id
        line, = curves.plot(epochs, values, linewidth=2.8 if is_best else 1.0, alpha=1.0 if is_best else 0.55,
                            color="crimson" if is_best else None, zorder=3 if is_best else 2,
                            label=f"best: trial {trial.trial_id}" if is_best else None)
        if trial.status in (TrialStatus.STOPPED, TrialStatus.DIVERGED, TrialStatus.ERRORED):
            curves.plot(epochs[-1], values[-1], marker="x", markersize=8, color=line.get_color(), zorder=4)
    curves.plot([], [], marker="x", linestyle="none", color="gray", label="stopped early / diverged / errored")
    curves.set_title(f"{summary.name}: {metric} per epoch, {len(trials)} trials")
    curves.set_xlabel("epoch")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole
    curves.set_ylabel(metric)
    curves.grid(alpha=0.3)
    curves.legend(loc="best", fontsize=9)
    for index, (name, node) in enumerate(parameters.items()):
        axes = figure.add_subplot(grid[top + index // columns, index % columns])
        _parameter_panel(axes, name, node, trials, metric, best_id)
    return figure


def _front_panel(axes: Any, summary: Any, goal: Any) -> None:
    """Every trial's result on the first two objectives: the feasible Pareto front joined by a step line,
    the other feasible trials, the infeasible ones as crosses, `best/` as a star."""
    first, second = goal.objectives[:2]
    front = set(summary.pareto or ())
    best_id = summary.best.trial_id if summary.best else None
    groups: dict[str, list[tuple[float, float]]] = {"front": [], "feasible": [], "infeasible": []}
    best = None
    for trial in summary.trials:
        x, y = trial.value(first.metric), trial.value(second.metric)
        if x is None or y is None:
            continue
        kind = "front" if trial.trial_id in front else "feasible" if trial.feasible is not False else "infeasible"
        groups[kind].append((x, y))
        best = (x, y) if trial.trial_id == best_id else best
    if groups["feasible"]:
        axes.scatter(*zip(*groups["feasible"]), s=25, color="tab:blue", alpha=0.6, label="dominated")
    if groups["infeasible"]:
        axes.scatter(*zip(*groups["infeasible"]), s=30, marker="x", color="gray",
                     label=f"infeasible ({', '.join(c.describe() for c in goal.constraints)})")
    if groups["front"]:
        xs, ys = zip(*sorted(groups["front"], key=lambda xy: first.lower_is_better(xy[0])))
        if len(goal.objectives) == 2:  # a staircase only where the two axes are the whole front
            axes.step(xs, ys, where="post", color="crimson", alpha=0.5, zorder=2)
        axes.scatter(xs, ys, s=45, color="crimson", zorder=3, label=f"Pareto front ({len(xs)} trials)")
    if best is not None:
        axes.scatter(*best, s=220, marker="*", color="gold", edgecolor="black", zorder=4,
                     label=f"best/ (best {goal.select})")
    others = f" (of {len(goal.objectives)} objectives)" if len(goal.objectives) > 2 else ""
    axes.set_title(f"{summary.name}: {first.metric} ({first.mode}) against {second.metric} ({second.mode}){others}")
    axes.set_xlabel(f"{first.metric} ({first.mode})")
    axes.set_ylabel(f"{second.metric} ({second.mode})")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=9)


def _parameter_panel(axes: Any, name: str, node: Any, trials: list[ShownTrial], metric: str,
                     best_id: str | None) -> None:
    """The best value of the metric of each trial against one searched parameter."""
    points = []
    for row in trials:
        value = flatten(row.trial.config or {}).get(name)
        if value is not None and row.value is not None:
            points.append((value, row.value, row.trial.trial_id == best_id))
    categorical = isinstance(node, (Choice, Grid)) or any(isinstance(v, (str, bool)) for v, _, _ in points)
    if categorical:
        values = {str(v): v for v, _, _ in points}
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values())
        labels = sorted(values, key=lambda label: (values[label], label) if numeric else (0, label))
        position = {label: i for i, label in enumerate(labels)}
        xs = [position[str(v)] for v, _, _ in points]
        axes.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0)
    else:
        xs = [v for v, _, _ in points]
        if isinstance(node, Distribution) and node.is_log:
            _log_axis(axes, node.low, node.high)
    ys = [s for _, s, _ in points]
    colours = ["crimson" if best else "tab:blue" for _, _, best in points]
    axes.scatter(xs, ys, c=colours, s=[60 if best else 25 for _, _, best in points], alpha=0.8)
    axes.set_xlabel(name)
    axes.set_ylabel(f"best {metric}")
    axes.grid(alpha=0.3)


def _log_axis(axes: Any, low: float, high: float) -> None:
    """A log x axis whose labels never overlap: labelled decades over a wide range; over less than two
    decades (where matplotlib labels every minor tick, 2e-3 3e-3 ... into one another), four labelled ticks
    spread evenly in log space."""
    import numpy as np
    from matplotlib.ticker import LogLocator, NullFormatter

    axes.set_xscale("log")
    axes.xaxis.set_minor_formatter(NullFormatter())
    if high / low < 100:
        ticks = np.geomspace(low, high, 4)
        axes.set_xticks(ticks, [f"{tick:.2g}" for tick in ticks])
    else:
        axes.xaxis.set_major_locator(LogLocator(base=10, numticks=6))


def plot_importance(analysis: Any, path: str | os.PathLike[str]) -> Path:
    """`tunerd analyze NAME --plot FILE.png`: one bar chart of the importances per objective, and with ASHA
    one per objective of the importance at each rung (grouped bars: what matters early and late)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = [o["metric"] for o in analysis.objectives]
    first = analysis.importance[0].values or {}
    labels = sorted(analysis.nodes, key=lambda label: -first.get(label, 0.0))  # the most important first
    panels = len(metrics) * (2 if analysis.rungs else 1)
    figure, axes = plt.subplots(panels, 1, figsize=(max(7.0, 1.1 * len(labels) + 3), 3.8 * panels),
                                constrained_layout=True, squeeze=False)
    for row, metric in enumerate(metrics):
        found = next(i for i in analysis.importance if i.objective == metric)
        shares = [(found.values or {}).get(label, 0.0) for label in labels]
        ax = axes[row * (2 if analysis.rungs else 1), 0]
        ax.bar(labels, shares, color="tab:blue")
        ax.set_title(f"{analysis.name}: importance for {metric} (fANOVA, {found.trials} trials)")
        ax.set_ylabel("share of variance")
        ax.tick_params(axis="x", rotation=30 if len(labels) > 4 else 0)
        ax.grid(axis="y", alpha=0.3)
        if analysis.rungs:
            ax = axes[row * 2 + 1, 0]
            rungs = [r for r in analysis.rungs if r.objective == metric and r.values is not None]
            width = 0.8 / max(1, len(rungs))
            for k, rung in enumerate(rungs):
                ax.bar(np.arange(len(labels)) + (k - (len(rungs) - 1) / 2) * width,
                       [rung.values.get(label, 0.0) for label in labels], width,
                       label=f"epoch {rung.epoch} ({rung.trials} trials)")
            ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 4 else 0)
            ax.set_title(f"importance for {metric} at each ASHA rung (the trials that reached it)")
            ax.set_ylabel("share of variance")
            ax.grid(axis="y", alpha=0.3)
            if rungs:
                ax.legend(fontsize=9)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    plt.close(figure)
    return target
