"""Hyperparameter importance with Optuna's fANOVA, over trials that were not run by Optuna.

The trials become an in-memory Optuna study (`optuna.trial.create_trial`), each parameter encoded as the
Optuna searchers encode it (`tunerd.searchers._optuna`: one parameter per node, named by its path, a choice
as its option index), so that the same label means the same thing in a search and in its analysis.

Why fANOVA (`FanovaImportanceEvaluator`) and not Optuna's default PED-ANOVA: tunerd's experiments are small
(tens of trials), and PED-ANOVA compares the top 10 % of the trials with the rest, two or three trials here,
which on 24 toy trials gave a parameter of tiny effect a tenth of the importance; fANOVA's random forest uses
every trial, is seeded (the experiment's `seed`: the same experiment gives the same numbers) and gave it 0.4 %.
Its one limit, parameters present in every trial only, is met by analysing a conditional sub-space over the
trials that took it (`tunerd.analysis`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunerd.searchers._optuna import distribution
from tunerd.space import Choice, Distribution, Grid

#: fewer trials than this give no importance (a forest fitted on four points ranks noise)
MIN_TRIALS = 5


@dataclass(frozen=True)
class Observation:
    """One trial as the analysis sees it: its Optuna-encoded parameters and the value to explain."""

    trial_id: str
    params: dict[str, Any]
    value: float


def fanova(observations: list[Observation], nodes: dict[str, Distribution | Choice | Grid], *,
           seed: int) -> dict[str, float]:
    """Each parameter's share of the variance of the value (they sum to 1; best first), over the parameters
    every observation has. Needs at least `MIN_TRIALS` observations (a ValueError otherwise)."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    if len(observations) < MIN_TRIALS:
        raise ValueError(f"{len(observations)} trials; importance needs at least {MIN_TRIALS}")
    common = set.intersection(*(set(o.params) for o in observations))
    labels = [label for label in nodes if label in common]
    if not labels:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {label: _covering(nodes[label], [o.params[label] for o in observations]) for label in labels}
    study = optuna.create_study()
    study.add_trials([optuna.trial.create_trial(params={label: o.params[label] for label in labels},
                                                distributions=distributions, value=o.value)
                      for o in observations])
    found = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed), params=labels)
    return {label: float(share) for label, share in found.items()}


def _covering(node: Distribution | Choice | Grid, values: list[Any]) -> Any:
    """The node's Optuna distribution, its bounds widened to hold every observed value (a `normal` draws
    outside mean +- 3 sd; a hand-edited spec.yaml may have narrowed a range)."""
    made = distribution(node)
    if isinstance(node, Distribution):
        low, high = min([made.low, *values]), max([made.high, *values])
        if (low, high) != (made.low, made.high):
            made = type(made)(low, high, log=made.log)
    return made
