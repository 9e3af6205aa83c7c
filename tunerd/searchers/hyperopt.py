"""`algorithm: hyperopt`: the Tree-structured Parzen Estimator of the hyperopt library, through Ray Tune's
`HyperOptSearch` over tunerd's own translation of the space (`_hyperopt.py` says why)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from tunerd.searchers.base import Accepts, NoOptions, SearchAlgorithm

#: random trials before TPE models the results, unless `search.random_initial` says otherwise
HYPEROPT_RANDOM_INITIAL = 10


class HyperOptOptions(NoOptions):
    #: random trials before the model takes over (null: 10)
    random_initial: int | None = Field(None, ge=0)


class HyperOpt(SearchAlgorithm):
    name = "hyperopt"
    summary = "Tree-structured Parzen Estimator, hyperopt"
    accepts = Accepts()
    options = HyperOptOptions
    learns = True
    warm_starts = True

    def build(self, experiment: Any, *, max_concurrent: int | None) -> tuple[Any, dict[str, Any]]:
        import numpy as np

        from tunerd.searchers._hyperopt import TunerdHyperOptSearch
        from tunerd.space import complete_point

        spec, options = experiment.spec, experiment.search_options
        rng = np.random.RandomState(spec.seed)  # hyperopt needs whole points: complete partial ones
        searcher = TunerdHyperOptSearch(
            experiment.space, metric=spec.metric, mode=spec.mode,
            points=[complete_point(dict(p), experiment.space, rng) for p in spec.search.initial_points],
            n_initial_points=HYPEROPT_RANDOM_INITIAL if options.random_initial is None else options.random_initial,
            seed=spec.seed, observed=experiment.observations(),
        )
        return searcher, {}  # the searcher holds the space, constants included


BACKEND = HyperOpt()
