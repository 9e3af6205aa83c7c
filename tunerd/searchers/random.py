"""`algorithm: random`: seeded random sampling, `grid` axes crossed with the samples (Ray Tune's variant
generator)."""
from __future__ import annotations

from typing import Any

from tunerd.searchers._variants import build_variant_generator
from tunerd.searchers.base import Accepts, SearchAlgorithm


class RandomSearch(SearchAlgorithm):
    name = "random"
    summary = "seeded random sampling, Ray Tune's variant generator"
    multi_objective = True
    accepts = Accepts(grid_axes=True, conditional_initial_points=False)

    def build(self, experiment: Any, *, max_concurrent: int | None) -> tuple[Any, dict[str, Any]]:
        return build_variant_generator(experiment, choices_are_grid=False, max_concurrent=max_concurrent)


BACKEND = RandomSearch()
