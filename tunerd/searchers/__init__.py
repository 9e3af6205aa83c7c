"""Search algorithms: one adapter per backend, chosen by `search.algorithm`.

grid and random use Ray's basic variant generator, hyperopt Ray's `HyperOptSearch` over tunerd's own
space translation (see searchers/hyperopt.py), bayesopt tunerd's own
`BayesOptSearcher` (Ray's `BayesOptSearch` is broken with bayesian-optimization >= 2).
Returns the search algorithm and the param_space the Tuner gets alongside it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ray.tune.search import BasicVariantGenerator, SearchAlgorithm, Searcher

from tunerd.space import complete_point, to_tune
from tunerd.spec import Experiment

ALGORITHMS = ("grid", "random", "hyperopt", "bayesopt")
HYPEROPT_RANDOM_INITIAL = 10

__all__ = ["ALGORITHMS", "build_search"]


def build_search(experiment: Experiment, *,
                 max_concurrent: int | None = None) -> tuple[SearchAlgorithm | Searcher, dict[str, Any]]:
    """`max_concurrent` caps the trials at once for grid and random: Tune applies its own
    `max_concurrent_trials` to a `Searcher` only, and ignores it (with a log warning) for the variant generator."""
    spec = experiment.spec
    search = spec.search
    points = [dict(p) for p in search.initial_points]
    if search.algorithm in ("grid", "random"):
        grid = search.algorithm == "grid"
        generator = BasicVariantGenerator(points_to_evaluate=points or None, random_state=spec.seed,
                                          max_concurrent=max_concurrent or 0)
        return generator, to_tune(experiment.space, choices_are_grid=grid)
    if search.algorithm == "hyperopt":
        from tunerd.searchers.hyperopt import TunerdHyperOptSearch

        rng = np.random.RandomState(spec.seed)  # hyperopt needs whole points: complete partial ones
        searcher = TunerdHyperOptSearch(
            experiment.space, metric=spec.metric, mode=spec.mode,
            points=[complete_point(p, experiment.space, rng) for p in points],
            n_initial_points=search.random_initial if search.random_initial is not None
            else HYPEROPT_RANDOM_INITIAL,
            seed=spec.seed,
        )
        return searcher, {}  # the searcher holds the space, constants included
    from tunerd.searchers.bayesopt import BayesOptSearcher

    searcher = BayesOptSearcher(
        experiment.space, metric=spec.metric, mode=spec.mode, seed=spec.seed, initial_points=points,
        random_initial=search.random_initial,  # None: max(5, 2 x the searched parameters), see default_random_initial
        acquisition=search.acquisition,
    )
    return searcher, {}  # the searcher returns whole configs, constants included

