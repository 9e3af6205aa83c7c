"""Search algorithms: one module per backend (`grid`, `random`, `hyperopt`, `bayesopt`), each declaring
itself (see `base.SearchAlgorithm`), found by listing this package. Implementations tunerd writes itself
live in `_`-modules: `_variants` (Ray's variant generator), `_hyperopt`, `_bayesopt`.

Adding a search algorithm is one new module here with `BACKEND = ...`, and its tests.
"""
from __future__ import annotations

from tunerd.registry import Registry
from tunerd.searchers.base import Accepts, NoOptions, SearchAlgorithm

#: every search algorithm, by `search.algorithm`
ALGORITHMS: Registry[SearchAlgorithm] = Registry("tunerd.searchers", "search algorithm")

__all__ = ["ALGORITHMS", "Accepts", "NoOptions", "SearchAlgorithm"]
