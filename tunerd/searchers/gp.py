"""`algorithm: gp`: Optuna's Gaussian-process sampler (a Matern kernel with a length scale per parameter,
log-expected improvement, categorical and integer parameters handled natively); run by Ray Tune's
`OptunaSearch`. Parameters of a conditional sub-space it models only where every trial has them; the
others are sampled at random."""
from __future__ import annotations

from typing import Any

from tunerd.searchers._optuna import OptunaBackend, random_initial
from tunerd.searchers.base import Accepts


class GP(OptunaBackend):
    name = "gp"
    summary = "Optuna's Gaussian-process Bayesian optimisation"
    multi_objective = True
    accepts = Accepts()

    def sampler(self, options: Any, *, seed: int, space: dict[str, Any], observed: list[Any]) -> Any:
        import optuna

        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=random_initial(options),
                                         warn_independent_sampling=False)


BACKEND = GP()
