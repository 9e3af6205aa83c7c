"""`algorithm: tpe`: Optuna's Tree-structured Parzen Estimator, multivariate (it models the parameters
jointly, hyperopt's TPE one at a time) and grouped (conditional sub-spaces modelled branch by branch), with
the constant liar for trials that run at once; run by Ray Tune's `OptunaSearch`."""
from __future__ import annotations

from typing import Any

from tunerd.searchers._optuna import OptunaBackend, random_initial
from tunerd.searchers.base import Accepts


class TPE(OptunaBackend):
    name = "tpe"
    summary = "Optuna's multivariate Tree-structured Parzen Estimator"
    multi_objective = True
    accepts = Accepts()

    def sampler(self, options: Any, *, seed: int, space: dict[str, Any], observed: list[Any]) -> Any:
        import warnings

        import optuna

        with warnings.catch_warnings():  # `group` is marked experimental (since Optuna 2.8)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=random_initial(options),
                                              multivariate=True, group=True, constant_liar=True)


BACKEND = TPE()
