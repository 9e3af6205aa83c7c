"""`TunerdOptunaSearch`: Ray's own `OptunaSearch` (ask/tell, state saving, Tune integration) over tunerd's
space as a define-by-run function (`_optuna.DefineByRun`), returning whole tunerd configs, and teaching the
sampler each trial's best value (see `_optuna`). Importing it imports Optuna."""
from __future__ import annotations

import warnings
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from tunerd.objectives import Goal
from tunerd.ray_internals import optuna_study
from tunerd.searchers._best_epoch import LearnsBestEpoch
from tunerd.searchers._optuna import CONFIG_KEY, MISSING_VIOLATION, DefineByRun, point_to_params


class TunerdOptunaSearch(LearnsBestEpoch, OptunaSearch):
    """With several objectives Optuna's study is multi-objective (every objective's value told, a trial
    missing one told as pruned); with constraints each trial's violation of each is set on it
    (`Trial.set_constraint`) before it is told, which Optuna's samplers read."""

    def __init__(self, tree: dict[str, Any], *, sampler: Any, goal: Goal, points: list[dict[str, Any]],
                 observed: list[optuna.trial.FrozenTrial] = ()) -> None:
        """`observed`: earlier trials, completed (`_optuna.frozen_trials`), added to the study (a warm start:
        the sampler models them and counts them towards its random start; Tune never runs them)."""
        metric: str | list[str] = list(goal.metrics) if goal.is_multi else goal.select
        mode: str | list[str] = list(goal.modes) if goal.is_multi else goal.selected.mode
        super().__init__(space=DefineByRun(tree), metric=metric, mode=mode, sampler=sampler,
                         points_to_evaluate=[point_to_params(p, tree) for p in points] or None)
        self._goal = goal
        study = optuna_study(self)
        for trial in observed:
            study.add_trial(trial)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        result = self.best_result(trial_id, result, error)
        goal = self._goal
        if result and goal.constraints and trial_id in self._ot_trials:
            for constraint in goal.constraints:  # Optuna 5's samplers read them from the trial (<= 0: met)
                violation = min(constraint.violation(result.get(constraint.metric)), MISSING_VIOLATION)
                self._ot_trials[trial_id].set_constraint(constraint.metric, violation)
        if result and goal.is_multi and goal.point(result) is None:
            result = None  # Ray would tell Optuna a list holding None: a pruned trial instead
        OptunaSearch.on_trial_complete(self, trial_id, result=result, error=error)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        with warnings.catch_warnings():
            # Ray warns when the define-by-run function takes over a second, taking it for training: here it is
            # the sampler's own model (a GP's fit), which is the point
            warnings.filterwarnings("ignore", message="Define-by-run function passed in the `space` argument took")
            suggested = super().suggest(trial_id)
        return None if suggested is None else suggested[CONFIG_KEY]


class PicklableNSGAII(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II sampler that pickles: Optuna 5's genetic-algorithm base holds a `threading.Lock`,
    which neither Ray's `tuner.pkl` nor the searcher's saved state (for `tunerd resume`) can pickle."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import threading

        self.__dict__.update(state)
        self._thread_lock = threading.Lock()
