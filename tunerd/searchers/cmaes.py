"""`algorithm: cmaes`: the covariance matrix adaptation evolution strategy (Optuna's CmaEsSampler on the
`cmaes` package), for continuous and integer spaces; a `choice` is refused (CMA-ES has no categorical
parameters). Run by Ray Tune's `OptunaSearch`."""
from __future__ import annotations

from typing import Any

from tunerd.searchers._optuna import OptunaBackend, random_initial
from tunerd.searchers.base import Accepts


class CmaEs(OptunaBackend):
    name = "cmaes"
    summary = "CMA-ES, Optuna's CmaEsSampler"
    accepts = Accepts(categorical=False, conditional=False, conditional_initial_points=False)

    def sampler(self, options: Any, *, seed: int, space: dict[str, Any]) -> Any:
        import optuna

        return optuna.samplers.CmaEsSampler(seed=seed, n_startup_trials=random_initial(options),
                                            warn_independent_sampling=False)


BACKEND = CmaEs()
