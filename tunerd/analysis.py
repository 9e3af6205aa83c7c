"""`tunerd analyze NAME`: what an experiment's trials say about its search space, read from its files (no Ray).

- importance: each searched parameter's share of the variance of the metric (fANOVA, `tunerd.importance`),
  per objective; with ASHA also per rung, over the trials that reached it, with their metric at that epoch
  (what matters early, what matters late); a conditional sub-space over the trials that took it;
- best region: the values the best trials used (the top 20 %, at least 3), and the best trial's;
- bound warnings: the best trials crowd a bound of a numeric range (the search wants to go past it).

A trial counts with its best value of the metric (as tunerd ranks trials); errored, diverged and unfinished
trials are left out, and counted. `tunerd.nextfile` turns an `Analysis` into the next experiment file.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from tunerd.errors import UsageError
from tunerd.importance import MIN_TRIALS, Observation, fanova
from tunerd.report import read_spec, read_summary
from tunerd.searchers._optuna import decoded, labelled_nodes, point_to_params
from tunerd.space import Choice, Distribution, Grid, parse_space
from tunerd.summary import Summary, TrialRecord, TrialStatus

#: the best trials whose values make a parameter's best region: this share of the trials, at least `TOP_MIN`
TOP_SHARE, TOP_MIN = 0.2, 3
#: a bound warning: of the best `EDGE_TRIALS` trials, at least `EDGE_NEEDED` (the best one among them) lie in
#: the outer `EDGE_BAND` of the range at the same end (in log space for log kinds)
EDGE_TRIALS, EDGE_NEEDED, EDGE_BAND = 3, 2, 0.1


@dataclass
class Importance:
    """Parameter importances (sum 1, best first) of one objective over one set of trials; `values` is None
    and `note` says why when there were too few."""

    objective: str
    scope: str
    trials: int
    values: dict[str, float] | None
    note: str | None = None
    #: the epoch of an ASHA rung (None: each trial's best epoch)
    epoch: int | None = None


@dataclass
class Region:
    """Where a parameter's best trials are: a numeric range's `low`-`high`, or a choice's options (with how
    many of the top trials took each), and the best trial's value."""

    parameter: str
    kind: str
    best: Any
    top: int
    low: float | None = None
    high: float | None = None
    options: dict[str, int] | None = None


@dataclass
class BoundWarning:
    parameter: str
    side: str  # "lower" | "upper"
    bound: float
    values: list[float]

    @property
    def message(self) -> str:
        shown = ", ".join(f"{v:.3g}" for v in self.values)
        return (f"{self.parameter}: {len(self.values)} of the best {EDGE_TRIALS} trials are at the {self.side} "
                f"bound {self.bound:g} ({shown}): widen it")


@dataclass
class Analysis:
    """Everything `tunerd analyze` prints (and `--json` writes)."""

    name: str
    storage: str
    objectives: list[dict[str, str]]
    used: int
    left_out: dict[str, int]
    importance: list[Importance]
    regions: dict[str, Region]
    warnings: list[BoundWarning]
    rungs: list[Importance] = field(default_factory=list)
    branches: list[Importance] = field(default_factory=list)
    #: the resolved spec.yaml and its parsed space, for the next experiment file
    spec: dict[str, Any] = field(default_factory=dict, repr=False)
    nodes: dict[str, Any] = field(default_factory=dict, repr=False)
    best_params: dict[str, Any] = field(default_factory=dict, repr=False)
    plot: str | None = None
    written: str | None = None

    def importance_of(self, label: str) -> float | None:
        """The parameter's largest importance over the objectives (None: not assessed)."""
        found = [i.values[label] for i in (*self.importance, *self.branches)
                 if i.values is not None and label in i.values]
        return max(found) if found else None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "storage": self.storage, "objectives": self.objectives, "trials_used": self.used,
                "left_out": self.left_out, "importance": [asdict(i) for i in self.importance],
                "branches": [asdict(i) for i in self.branches], "rungs": [asdict(i) for i in self.rungs],
                "regions": {label: asdict(r) for label, r in self.regions.items()},
                "warnings": [{**asdict(w), "message": w.message} for w in self.warnings],
                **({"plot": self.plot} if self.plot else {}), **({"written": self.written} if self.written else {})}


def analyze(name: str, storage: str | None = None) -> Analysis:
    """Analyse experiment `name` in `storage` (default as every command: $TUNERD_STORAGE, ./tunerd-results).
    A UsageError when it does not exist, its files are damaged, or too few of its trials have a result."""
    from tunerd.storage import resolve_storage

    try:
        root = resolve_storage(storage)
    except ValueError as exc:
        raise UsageError(f"--storage: {exc}") from None
    summary, spec = read_summary(root, name), read_spec(root, name)
    tree, nodes = _searched(spec, f"{root.rstrip('/')}/{name}/spec.yaml")
    goal = summary.goal()
    used, left_out = _usable(summary, tree)
    if len(used) < MIN_TRIALS:
        why = "".join(f", {n} {reason}" for reason, n in left_out.items())
        raise UsageError(f"{name}: {len(used)} trials with a result{why}; the analysis needs at least {MIN_TRIALS}")
    seed = spec["seed"] if isinstance(spec.get("seed"), int) else 0
    trials = {t.trial_id: t for t in summary.trials}
    ranked = [t for t in summary.ranked() if t.trial_id in used]
    top = [used[t.trial_id] for t in ranked[:max(TOP_MIN, math.ceil(TOP_SHARE * len(ranked)))]]
    best = used[ranked[0].trial_id]
    whole = {metric: [Observation(i, p, v) for i, p in used.items() if (v := trials[i].value(metric)) is not None]
             for metric in goal.metrics}
    return Analysis(
        name=name, storage=root, objectives=[o.as_dict() for o in goal.objectives], used=len(used),
        left_out=left_out, importance=[_importance(obs, nodes, metric, "all trials", seed)
                                       for metric, obs in whole.items()],
        regions={label: _region(label, node, top, best) for label, node in nodes.items() if label in best},
        warnings=[w for label, node in nodes.items()
                  if (w := _bound_warning(label, node, [used[t.trial_id] for t in ranked]))],
        rungs=_rungs(summary, spec, used, nodes, seed),
        branches=[i for metric, obs in whole.items() for i in _branches(obs, nodes, metric, seed)],
        spec=spec, nodes=nodes, best_params=best)


def _searched(spec: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Distribution | Choice | Grid]]:
    """The parsed space of the resolved spec, and its searched parameters by Optuna label."""
    problems: list[Any] = []
    tree = parse_space(spec.get("space"), "space", problems) if isinstance(spec.get("space"), dict) else None
    if problems or not isinstance(tree, dict) or not tree:
        raise UsageError(f"{where} is missing or damaged: its space cannot be read"
                         + (f" ({problems[0].path}: {problems[0].message})" if problems else ""))
    nodes = labelled_nodes(tree)
    if not nodes:
        raise UsageError(f"{where}: the space searches nothing (every parameter is a constant)")
    return tree, nodes


def _usable(summary: Summary, tree: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The Optuna-encoded parameters of each trial with a result, by trial id; and how many trials were
    left out, by reason."""
    used: dict[str, dict[str, Any]] = {}
    left_out: dict[str, int] = {}
    metrics = summary.goal().metrics
    for trial in summary.trials:
        reason = _left_out_because(trial, metrics)
        if reason is None:
            try:
                used[trial.trial_id] = point_to_params(trial.config or {}, tree)
            except (UsageError, KeyError, TypeError, AttributeError):
                reason = "outside the space of spec.yaml"
        if reason is not None:
            left_out[reason] = left_out.get(reason, 0) + 1
    return used, left_out


def _left_out_because(trial: TrialRecord, metrics: tuple[str, ...]) -> str | None:
    if trial.status in (TrialStatus.ERRORED, TrialStatus.DIVERGED):
        return str(trial.status)
    if not trial.status.ended:
        return "not ended"
    if all(trial.value(metric) is None for metric in metrics):
        return "without a result"
    return None


def _importance(observations: list[Observation], nodes: dict[str, Any], metric: str, scope: str, seed: int,
                epoch: int | None = None) -> Importance:
    if len(observations) < MIN_TRIALS:
        return Importance(metric, scope, len(observations), None, f"too few trials ({len(observations)}; needs "
                          f"{MIN_TRIALS})", epoch)
    return Importance(metric, scope, len(observations), fanova(observations, nodes, seed=seed), epoch=epoch)


def _branches(observations: list[Observation], nodes: dict[str, Any], metric: str, seed: int) -> list[Importance]:
    """The importance inside each conditional sub-space (a choice's mapping option), over the trials that
    took it: fANOVA needs parameters every trial has."""
    found = []
    for label, node in nodes.items():
        options = node.options if isinstance(node, Choice) else node.values if isinstance(node, Grid) else ()
        for index, option in enumerate(options):
            inner = f"{label}.{index}."
            if isinstance(option, dict) and any(other.startswith(inner) for other in nodes):
                took = [o for o in observations if o.params.get(label) == index]
                result = _importance(took, nodes, metric, f"{label} = option {index}", seed)
                if result.values is not None:
                    result.values = {k: v for k, v in result.values.items() if k.startswith(inner)}
                found.append(result)
    return found


def _rungs(summary: Summary, spec: dict[str, Any], used: dict[str, dict[str, Any]], nodes: dict[str, Any],
           seed: int) -> list[Importance]:
    """With ASHA: the importance at each rung (epochs grace_period x reduction_factor^k, and max_epochs),
    over the trials that reached it, with the value they reported at that epoch."""
    scheduler, stop = spec.get("scheduler") or {}, spec.get("stop") or {}
    if scheduler.get("name") != "asha":
        return []
    grace, factor, last = scheduler.get("grace_period"), scheduler.get("reduction_factor"), stop.get("max_epochs")
    if not all(isinstance(v, (int, float)) and v > 0 for v in (grace, factor, last)) or factor <= 1:
        return []
    epochs, epoch = [], float(grace)
    while epoch < last and len(epochs) < 20:
        epochs.append(int(round(epoch)))
        epoch *= factor
    epochs.append(int(last))
    found = []
    for rung in sorted(set(epochs)):
        for metric in summary.goal().metrics:
            observations = [Observation(t.trial_id, used[t.trial_id], value) for t in summary.trials
                            if t.trial_id in used and (value := _at_epoch(t, metric, rung)) is not None]
            found.append(_importance(observations, nodes, metric, f"rung at epoch {rung}", seed, rung))
    return found


def _at_epoch(trial: TrialRecord, metric: str, epoch: int) -> float | None:
    """The trial's value of `metric` at `epoch` (a history without `epoch` keys counts its reports)."""
    for position, report in enumerate(trial.history, 1):
        if report.get("epoch", position) == epoch:
            value = report.get(metric)
            return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None
    return None


def _region(label: str, node: Any, top: list[dict[str, Any]], best: dict[str, Any]) -> Region:
    kind = node.kind if isinstance(node, Distribution) else "choice" if isinstance(node, Choice) else "grid"
    took = [params[label] for params in top if label in params]
    if isinstance(node, Distribution):
        values = [decoded(node, v) for v in took]
        return Region(label, kind, decoded(node, best[label]), len(took), min(values), max(values))
    options: dict[str, int] = {}
    for index in took:
        options[option_text(node, index)] = options.get(option_text(node, index), 0) + 1
    return Region(label, kind, option_text(node, best[label]), len(took),
                  options=dict(sorted(options.items(), key=lambda kv: -kv[1])))


def option_text(node: Choice | Grid, index: int) -> str:
    """A choice's option as text: the value, or `option i` for a sub-space."""
    option = (node.options if isinstance(node, Choice) else node.values)[index]
    return f"option {index}" if isinstance(option, dict) else str(option)


def position(node: Distribution, value: float) -> float:
    """Where `value` lies in the node's range, 0 (lower bound) to 1 (upper), in log space for log kinds."""
    lo, hi = node.low, node.high
    if node.is_log:
        lo, hi, value = math.log(lo), math.log(hi), math.log(max(value, node.low))
    return 0.5 if hi == lo else (value - lo) / (hi - lo)


def _bound_warning(label: str, node: Any, ranked: list[dict[str, Any]]) -> BoundWarning | None:
    """The best trial and at least EDGE_NEEDED of the best EDGE_TRIALS lie at one end of a numeric range."""
    if not isinstance(node, Distribution) or node.kind == "normal":
        return None
    values = [decoded(node, params[label]) for params in ranked if label in params][:EDGE_TRIALS]
    if not values:
        return None
    for side, bound, near in (("upper", node.high, lambda p: p >= 1 - EDGE_BAND),
                              ("lower", node.low, lambda p: p <= EDGE_BAND)):
        at = [v for v in values if near(position(node, v))]
        if near(position(node, values[0])) and len(at) >= min(EDGE_NEEDED, len(values)):
            return BoundWarning(label, side, bound, at)
    return None
