"""`algorithm: grid`: every combination of the `choice` and `grid` values (Ray Tune's variant generator)."""
from __future__ import annotations

from typing import Any

from tunerd.searchers._variants import build_variant_generator
from tunerd.searchers.base import Accepts, SearchAlgorithm


class GridSearch(SearchAlgorithm):
    name = "grid"
    summary = "every combination of the choices and grid axes, Ray Tune's variant generator"
    multi_objective = True
    accepts = Accepts(continuous=False, grid_axes=True, conditional_initial_points=False)
    choices_are_grid = True
    #: `num_samples` repeats the whole grid
    default_num_samples = 1

    def build(self, experiment: Any, *, max_concurrent: int | None) -> tuple[Any, dict[str, Any]]:
        return build_variant_generator(experiment, choices_are_grid=True, max_concurrent=max_concurrent)


BACKEND = GridSearch()
