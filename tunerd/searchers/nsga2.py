"""`algorithm: nsga2`: Optuna's NSGA-II, the genetic algorithm most multi-objective tools start from
(non-dominated sorting and crowding distance choose each generation's parents; constraints by constraint
domination); run by Ray Tune's `OptunaSearch`. Its first generation is random: it pays off with budgets of
several generations (`population_size` trials each)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from tunerd.searchers._optuna import OptunaBackend
from tunerd.searchers.base import Accepts, NoOptions

#: Optuna's default population
POPULATION = 50


class NSGA2Options(NoOptions):
    #: trials per generation (null: 50, Optuna's default)
    population_size: int | None = Field(None, ge=2)


class NSGA2(OptunaBackend):
    name = "nsga2"
    summary = "Optuna's NSGA-II genetic algorithm, for several objectives"
    multi_objective = True
    accepts = Accepts()
    options = NSGA2Options

    def sampler(self, options: Any, *, seed: int, space: dict[str, Any], observed: list[Any]) -> Any:
        from tunerd.ray_internals import ga_generation_key
        from tunerd.searchers._optuna_search import PicklableNSGAII

        sampler = PicklableNSGAII(seed=seed, population_size=options.population_size or POPULATION)
        for trial in observed:  # a warm start's trials are its first generation, the next one's parents
            trial.system_attrs[ga_generation_key(sampler)] = 0
        return sampler


BACKEND = NSGA2()
