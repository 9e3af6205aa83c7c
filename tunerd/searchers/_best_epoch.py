"""What a finished trial teaches a model-based searcher: its best reported value of the metric.

tunerd ranks a trial by its best epoch and keeps that epoch's checkpoint; a searcher told the last
report instead would learn the epoch ASHA stopped the trial at (often after a worse one), or a trial's
final non-finite value. Every model-based backend (hyperopt, bayesopt, and Optuna's tpe, gp, cmaes) mixes
this in before its Ray Tune `Searcher` class, so each learns what tunerd ranks.
"""
from __future__ import annotations

import math
from typing import Any


class LearnsBestEpoch:
    """A Ray Tune `Searcher` mixin (list it first among the bases): the base's `on_trial_complete` receives
    the trial's best value of the metric seen in `on_trial_result`. The values are kept in `_best_seen` (a searcher that
    saves its own state saves that too)."""

    _best_seen: dict[str, float]
    metric: str
    mode: str

    def _seen(self) -> dict[str, float]:
        if "_best_seen" not in self.__dict__:
            self._best_seen = {}
        return self._best_seen

    def _keep_better(self, trial_id: str, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            seen = self._seen().get(trial_id)
            if seen is None or (value > seen if self.mode == "max" else value < seen):
                self._seen()[trial_id] = float(value)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if isinstance(self.metric, list):  # several objectives: nothing is "best" alone
            return super().on_trial_result(trial_id, result)  # type: ignore[misc]
        self._keep_better(trial_id, result.get(self.metric))
        super().on_trial_result(trial_id, result)  # type: ignore[misc]

    def best_result(self, trial_id: str, result: dict[str, Any] | None, error: bool) -> dict[str, Any] | None:
        """The trial's last result with its best value of the metric (and the trial forgotten)."""
        if isinstance(self.metric, list):  # several objectives: nothing is "best" alone
            return result
        self._keep_better(trial_id, (result or {}).get(self.metric))
        best = self._seen().pop(trial_id, None)
        return {**(result or {}), self.metric: best} if best is not None and not error else result

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        """(A searcher that defines its own `on_trial_complete` calls `best_result` first instead.)"""
        super().on_trial_complete(trial_id, result=self.best_result(trial_id, result, error),  # type: ignore[misc]
                                  error=error)
