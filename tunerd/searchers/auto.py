"""`algorithm: auto`: a backend picked from the space and the budget, and the reason, which `validate`'s plan,
the launch header and `summary.json` give.

The rules, in order (the figures behind them: benchmarks/search_peers.py, the README's search table):
1. `grid` axes: `random` (the only model-free backend that crosses them with samples) — or `grid` when
   every searched parameter is a `grid`/`choice` and the combinations fit the budget;
2. every searched parameter a `choice` and the combinations fit the budget: `grid`, each tried once;
3. more than GP_MAX_PARAMETERS searched parameters or more than GP_MAX_TRIALS trials: `tpe` (a Gaussian
   process's cost per suggestion grows with the cube of the trials, and its model with the dimensions);
4. a conditional choice (options that are mappings): `bayesopt`, whose GP sees every branch's parameters
   and which branch a trial took (Optuna's GP models only the parameters every trial has; on the
   benchmark's conditional problem bayesopt's median regret was a sixth of TPE's);
5. otherwise: `gp`, Optuna's Gaussian process: on small continuous, integer and categorical spaces with
   small budgets it finds the best configuration in the fewest trials.
With several objectives, rules 1 and 2 hold, then: `nsga2` for budgets over NSGA2_MIN_TRIALS (several
generations of its population), else `tpe` (multi-objective TPE, Optuna's choice for small budgets).
"""
from __future__ import annotations

from typing import Any

from tunerd.searchers.base import Accepts, SearchAlgorithm
from tunerd.space import Choice, Distribution, Grid, grid_size, iter_nodes

#: the largest space and budget `auto` gives to the Gaussian process
GP_MAX_PARAMETERS = 12
GP_MAX_TRIALS = 200
#: the smallest budget `auto` gives NSGA-II with several objectives (6 generations of its 50)
NSGA2_MIN_TRIALS = 300


class Auto(SearchAlgorithm):
    name = "auto"
    multi_objective = True
    summary = "a backend picked from the space and the budget"
    accepts = Accepts(grid_axes=True)

    def resolve(self, space: dict[str, Any], num_samples: int | None, *,
                objectives: int = 1) -> tuple[SearchAlgorithm, str]:
        from tunerd.searchers import ALGORITHMS

        budget = num_samples if num_samples is not None else self.default_num_samples
        nodes = [node for node in iter_nodes(space) if not (isinstance(node, Choice) and len(node.options) < 2)]
        searched = [node for node in nodes if isinstance(node, (Distribution, Choice, Grid))]
        conditional = any(isinstance(node, Choice) and any(isinstance(o, dict) for o in node.options)
                          for node in searched)
        discrete = all(isinstance(node, (Choice, Grid)) for node in searched)
        combinations = grid_size(space, choices_are_grid=True)
        if discrete and combinations <= budget:
            return ALGORITHMS.get("grid"), (f"every searched parameter is a choice and their {combinations} "
                                            f"combinations fit the budget of {budget} trials: each is tried once")
        if any(isinstance(node, Grid) for node in searched):
            return ALGORITHMS.get("random"), "grid axes are crossed with random samples (only random does that)"
        if objectives > 1:
            if budget > NSGA2_MIN_TRIALS:
                return ALGORITHMS.get("nsga2"), (f"{objectives} objectives and a budget of {budget} trials (over "
                                                 f"{NSGA2_MIN_TRIALS}): NSGA-II evolves the Pareto front")
            return ALGORITHMS.get("tpe"), (f"{objectives} objectives and a budget of {budget} trials: multi-objective "
                                           "TPE learns the front from few trials")
        parameters = sum(1 for node in searched if not isinstance(node, Grid))
        if parameters > GP_MAX_PARAMETERS or budget > GP_MAX_TRIALS:
            what = (f"{parameters} searched parameters (over {GP_MAX_PARAMETERS})" if parameters > GP_MAX_PARAMETERS
                    else f"a budget of {budget} trials (over {GP_MAX_TRIALS})")
            return ALGORITHMS.get("tpe"), f"{what}: TPE scales where a Gaussian process slows down"
        if conditional:
            return ALGORITHMS.get("bayesopt"), ("a conditional choice: bayesopt's Gaussian process sees every "
                                                "branch's parameters and which branch a trial took")
        return ALGORITHMS.get("gp"), (f"{parameters} searched parameter{'s' if parameters != 1 else ''} and "
                                      f"a budget of {budget} trials: a Gaussian process finds the best in the "
                                      "fewest trials")

    def trial_count(self, space: dict[str, Any], num_samples: int) -> int:
        chosen, _ = self.resolve(space, num_samples)  # the grid rule is the same for every number of objectives
        return chosen.trial_count(space, 1 if chosen.name == "grid" else num_samples)

    def build(self, experiment: Any, *, max_concurrent: int | None) -> tuple[Any, dict[str, Any]]:
        raise RuntimeError("auto is resolved to a backend when the file is validated (Experiment.algorithm)")


BACKEND = Auto()
