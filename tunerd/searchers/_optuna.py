"""Optuna's samplers on Ray Tune: the backend base the `tpe`, `gp` and `cmaes` modules share, and tunerd's
space as Optuna's define-by-run function (Ray's own `OptunaSearch` runs it: `_optuna_search.py`).

Encoding, one Optuna parameter per node, named by its path (`training.1.lr`: `lr` in option 1 of
`training`, so that two branches may both have `lr`):
- uniform, loguniform, normal: `suggest_float` (log for log kinds; normal on [mean - 3 sd, mean + 3 sd],
  as bayesopt does: a sampler has no prior over its inputs);
- randint, lograndint: `suggest_int` (both bounds included; log for lograndint);
- quniform, qrandint: `suggest_int` of k, the value being k x q (every value is a multiple of q inside the
  bounds, which Optuna's own `step` cannot promise when lo is no multiple of q); qloguniform:
  `suggest_float(log=True)` rounded to the nearest multiple of q inside the bounds;
- choice: `suggest_categorical` of the option *index*; an option that is a mapping is a conditional
  sub-space whose parameters Optuna sees only when that option is chosen (define-by-run).
The function builds the tunerd config itself as it suggests, so the trial gets exactly the config the
other searchers would give (constants included).

What a trial teaches the sampler: its best reported value of the metric (tunerd ranks trials by their
best epoch and keeps that checkpoint), also when ASHA stopped it early; an errored trial is a failed trial
and a trial with no value a pruned one, which Optuna's samplers leave out of their models.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from tunerd.searchers.base import NoOptions, SearchAlgorithm
from tunerd.space import Choice, Distribution, Grid, labelled_point, quantize

if TYPE_CHECKING:
    from tunerd.spec import Experiment

#: the key under which the define-by-run function hands Ray the whole config (Ray flattens the rest)
CONFIG_KEY = "__tunerd_config__"
#: random trials before the model, as Optuna's samplers default to
OPTUNA_RANDOM_INITIAL = 10


class OptunaOptions(NoOptions):
    #: random trials before the model takes over (null: 10, Optuna's default)
    random_initial: int | None = Field(None, ge=0)


class OptunaBackend(SearchAlgorithm):
    """A search algorithm that is one of Optuna's samplers, run by Ray's `OptunaSearch`."""

    options: ClassVar[type[NoOptions]] = OptunaOptions
    learns = True
    #: earlier trials join the study as completed trials (`study.add_trial`)
    warm_starts = True

    def sampler(self, options: Any, *, seed: int, space: dict[str, Any], observed: list[Any]) -> Any:
        """The Optuna sampler to run (Optuna imported here, not when the file is checked); `observed`: the
        warm start's completed trials, which the study will hold (a sampler with its own warm-start API takes
        them too)."""
        raise NotImplementedError

    def observed(self, experiment: Experiment) -> list[Any]:
        """The warm start's earlier trials as Optuna's completed trials (`frozen_trials`)."""
        found = experiment.warm_start.observations if experiment.warm_start is not None else ()
        return frozen_trials(found, experiment.space, experiment.spec.goal())

    def build(self, experiment: Experiment, *, max_concurrent: int | None) -> tuple[Any, dict[str, Any]]:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study on the user's terminal
        spec = experiment.spec
        goal = spec.goal()
        observed = self.observed(experiment)
        sampler = self.sampler(experiment.search_options, seed=spec.seed, space=experiment.space, observed=observed)
        from tunerd.searchers._optuna_search import TunerdOptunaSearch

        searcher = TunerdOptunaSearch(experiment.space, sampler=sampler, goal=goal,
                                      points=[dict(p) for p in spec.search.initial_points], observed=observed)
        return searcher, {}  # the searcher returns whole configs, constants included


#: what a missing constrained metric counts as (Optuna wants finite constraint values)
MISSING_VIOLATION = 1e9


def random_initial(options: Any) -> int:
    return OPTUNA_RANDOM_INITIAL if options.random_initial is None else options.random_initial


class DefineByRun:
    """The define-by-run function OptunaSearch calls with each trial (a picklable object: the searcher's
    state, this included, is saved with the experiment for `tunerd resume`)."""

    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree

    def __call__(self, trial: Any) -> dict[str, Any]:
        return {CONFIG_KEY: _suggest(trial, self.tree, "")}


def _label(prefix: str, key: str) -> str:
    """`training.1.lr`: a path joined with `.`, which no parameter name holds (and Ray splits names on `/`)."""
    return f"{prefix}.{key}" if prefix else key


def _suggest(trial: Any, tree: dict[str, Any], prefix: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, node in tree.items():
        label = _label(prefix, key)
        if isinstance(node, dict):
            config[key] = _suggest(trial, node, label)
        elif isinstance(node, Distribution):
            config[key] = _number(trial, label, node)
        elif isinstance(node, Choice):
            index = trial.suggest_categorical(label, list(range(len(node.options))))
            option = node.options[index]
            config[key] = _suggest(trial, option, f"{label}.{index}") if isinstance(option, dict) else option
        elif isinstance(node, Grid):
            raise ValueError(f"{node.path}: Optuna's samplers cannot search a grid axis")
        else:
            config[key] = node
    return config


def _bounds(node: Distribution) -> tuple[bool, float, float, bool]:
    """(integer?, low, high, log?) of the Optuna parameter a distribution node is (the encoding above)."""
    lo, hi, q = node.low, node.high, node.q
    if node.kind in ("quniform", "qrandint"):
        return True, math.ceil(lo / q - 1e-9), math.floor(hi / q + 1e-9), False
    if node.kind in ("randint", "lograndint"):
        return True, int(lo), int(hi), node.kind == "lograndint"
    if node.kind == "normal":  # [mean, sd]
        return False, lo - 3 * hi, lo + 3 * hi, False
    return False, lo, hi, node.is_log


def _number(trial: Any, label: str, node: Distribution) -> int | float:
    integer, lo, hi, log = _bounds(node)
    if integer:
        value = trial.suggest_int(label, lo, hi, log=log)
        return decoded(node, value)
    value = trial.suggest_float(label, lo, hi, log=log)
    return quantize(value, node.q, node.low, node.high) if node.q is not None else value


def decoded(node: Distribution, value: Any) -> Any:
    """A parameter's value as the config holds it (a q-kind's multiple k of q is k x q)."""
    if node.kind not in ("quniform", "qrandint"):
        return value
    value = quantize(value * node.q, node.q, node.low, node.high)
    return int(value) if node.kind == "qrandint" else value


def distribution(node: Distribution | Choice | Grid) -> Any:
    """The Optuna distribution of a node's parameter: a choice (or, for analysis, a grid axis) is its option
    index; a number as the encoding above."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(node, (Choice, Grid)):
        return CategoricalDistribution(list(range(len(node.options if isinstance(node, Choice) else node.values))))
    integer, lo, hi, log = _bounds(node)
    return IntDistribution(lo, hi, log=log) if integer else FloatDistribution(lo, hi, log=log)


def labelled_nodes(tree: dict[str, Any], prefix: str = "") -> dict[str, Distribution | Choice | Grid]:
    """Every parameter Optuna could see, by label, conditional ones (under `choice.index.`) included."""
    found: dict[str, Distribution | Choice | Grid] = {}
    for key, node in tree.items():
        label = _label(prefix, key)
        if isinstance(node, dict):
            found.update(labelled_nodes(node, label))
        elif isinstance(node, (Distribution, Choice, Grid)):
            found[label] = node
            options = node.options if isinstance(node, Choice) else node.values if isinstance(node, Grid) else ()
            for index, option in enumerate(options):
                if isinstance(option, dict):
                    found.update(labelled_nodes(option, _label(label, str(index))))
    return found


def point_to_params(point: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    """An initial point (whole or partial) as Optuna parameters for `enqueue_trial`; what it leaves out
    Optuna samples. A q-distribution's parameter is its multiple of q (see the encoding above)."""
    return labelled_point(point, tree, _label, _encoded)


def _encoded(node: Distribution, value: Any) -> Any:
    return round(value / node.q) if node.kind in ("quniform", "qrandint") else value


def frozen_trials(observations: Any, tree: dict[str, Any], goal: Any) -> list[Any]:
    """Earlier trials (`tunerd.warmstart.Observation`s) as completed Optuna trials: the parameters and
    distributions are those the define-by-run function gives each config (Optuna's `FixedTrial` records
    them), the values every objective's, the constraints' violations as a trial of this run sets them."""
    import optuna

    define, trials = DefineByRun(tree), []
    for observation in observations:
        fixed = optuna.trial.FixedTrial(point_to_params(observation.config, tree))
        define(fixed)
        constraints = {c.metric: min(c.violation(observation.result.get(c.metric)), MISSING_VIOLATION)
                       for c in goal.constraints}
        trials.append(optuna.trial.create_trial(
            values=[observation.value(metric) for metric in goal.metrics], params=fixed.params,
            distributions=fixed.distributions, constraints=constraints or None))
    return trials
