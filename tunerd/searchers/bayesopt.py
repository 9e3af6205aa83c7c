"""`algorithm: bayesopt`: Gaussian-process Bayesian optimisation on the `bayesian-optimization` package's
current API, tunerd's own Ray Tune searcher (`_bayesopt.py`: Ray's `BayesOptSearch` is broken with
bayesian-optimization >= 2)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from tunerd.searchers.base import Accepts, NoOptions, SearchAlgorithm


class BayesOptOptions(NoOptions):
    #: random trials before the GP (null: max(5, 2 x the searched parameters))
    random_initial: int | None = Field(None, ge=0)
    #: expected improvement, upper confidence bound, probability of improvement
    acquisition: Literal["ei", "ucb", "poi"] = "ei"


class BayesOpt(SearchAlgorithm):
    name = "bayesopt"
    summary = "Gaussian-process Bayesian optimisation, bayesian-optimization"
    accepts = Accepts()
    options = BayesOptOptions
    learns = True
    warm_starts = True

    def build(self, experiment: Any, *, max_concurrent: int | None) -> tuple[Any, dict[str, Any]]:
        from tunerd.searchers._bayesopt import BayesOptSearcher

        spec, options = experiment.spec, experiment.search_options
        searcher = BayesOptSearcher(
            experiment.space, metric=spec.metric, mode=spec.mode, seed=spec.seed,
            initial_points=[dict(p) for p in spec.search.initial_points],
            random_initial=options.random_initial, acquisition=options.acquisition,
            observations=experiment.observations(),
        )
        return searcher, {}  # the searcher returns whole configs, constants included


BACKEND = BayesOpt()
