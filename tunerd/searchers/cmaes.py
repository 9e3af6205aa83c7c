"""`algorithm: cmaes`: the covariance matrix adaptation evolution strategy (Optuna's CmaEsSampler on the
`cmaes` package), for continuous and integer spaces; a `choice` is refused (CMA-ES has no categorical
parameters). Run by Ray Tune's `OptunaSearch`; a warm start's trials also set where its search distribution
starts (WS-CMA-ES)."""
from __future__ import annotations

from typing import Any

from tunerd.searchers._optuna import OptunaBackend, random_initial
from tunerd.searchers.base import Accepts

#: the fewest earlier trials WS-CMA-ES starts from (it takes the best 10% of them)
WS_CMA_MIN_TRIALS = 10


class CmaEs(OptunaBackend):
    name = "cmaes"
    summary = "CMA-ES, Optuna's CmaEsSampler"
    accepts = Accepts(categorical=False, conditional=False, conditional_initial_points=False)

    def sampler(self, options: Any, *, seed: int, space: dict[str, Any], observed: list[Any]) -> Any:
        import warnings

        import optuna

        # enough earlier trials also set where the search distribution starts (WS-CMA-ES, Optuna's
        # `source_trials`, marked experimental): it fits their best tenth, so it needs WS_CMA_MIN_TRIALS
        source = observed if len(observed) >= WS_CMA_MIN_TRIALS else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=random_initial(options),
                                                warn_independent_sampling=False, source_trials=source)


BACKEND = CmaEs()
