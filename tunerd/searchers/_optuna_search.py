"""`TunerdOptunaSearch`: Ray's own `OptunaSearch` (ask/tell, state saving, Tune integration) over tunerd's
space as a define-by-run function (`_optuna.DefineByRun`), returning whole tunerd configs, and teaching the
sampler each trial's best value (see `_optuna`). Importing it imports Optuna."""
from __future__ import annotations

import warnings
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from tunerd.searchers._best_epoch import LearnsBestEpoch
from tunerd.searchers._optuna import CONFIG_KEY, DefineByRun, point_to_params


class TunerdOptunaSearch(LearnsBestEpoch, OptunaSearch):
    def __init__(self, tree: dict[str, Any], *, sampler: Any, metric: str, mode: str,
                 points: list[dict[str, Any]]) -> None:
        super().__init__(space=DefineByRun(tree), metric=metric, mode=mode, sampler=sampler,
                         points_to_evaluate=[point_to_params(p, tree) for p in points] or None)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        with warnings.catch_warnings():
            # Ray warns when the define-by-run function takes over a second, taking it for training: here it is
            # the sampler's own model (a GP's fit), which is the point
            warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space` argument took")
            suggested = super().suggest(trial_id)
        return None if suggested is None else suggested[CONFIG_KEY]
