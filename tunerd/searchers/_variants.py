"""Ray Tune's own variant generator (grid and random search): tunerd's space as Ray Tune domains, the one
place tunerd's distributions meet Ray's."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunerd.space import Choice, Distribution, Grid

if TYPE_CHECKING:
    from tunerd.spec import Experiment


def to_tune(tree: Any, *, choices_are_grid: bool = False) -> Any:
    """Ray Tune's param_space for the tree (constants stay as they are).

    Ray's `randint` and `lograndint` exclude the upper bound; tunerd's include it, hence the `+ 1`.
    """
    from ray import tune

    if isinstance(tree, dict):
        return {k: to_tune(v, choices_are_grid=choices_are_grid) for k, v in tree.items()}
    if isinstance(tree, Grid) or (choices_are_grid and isinstance(tree, Choice)):
        items = tree.values if isinstance(tree, Grid) else tree.options
        return tune.grid_search([to_tune(v, choices_are_grid=choices_are_grid) for v in items])
    if isinstance(tree, Choice):
        return tune.choice([to_tune(v) for v in tree.options])
    if isinstance(tree, Distribution):
        a = tree.args
        return {
            "uniform": lambda: tune.uniform(a[0], a[1]),
            "quniform": lambda: tune.quniform(a[0], a[1], a[2]),
            "loguniform": lambda: tune.loguniform(a[0], a[1]),
            "qloguniform": lambda: tune.qloguniform(a[0], a[1], a[2]),
            "randint": lambda: tune.randint(a[0], a[1] + 1),
            "qrandint": lambda: tune.qrandint(a[0], a[1], a[2]),
            "lograndint": lambda: tune.lograndint(a[0], a[1] + 1),
            "normal": lambda: tune.randn(a[0], a[1]),
        }[tree.kind]()
    return tree


def build_variant_generator(experiment: Experiment, *, choices_are_grid: bool,
                            max_concurrent: int | None) -> tuple[Any, dict[str, Any]]:
    """Ray's BasicVariantGenerator over the space. `max_concurrent` is passed to it: Tune applies its own
    `max_concurrent_trials` to a `Searcher` only, and ignores it (with a log warning) for the generator."""
    from ray.tune.search import BasicVariantGenerator

    points = [dict(p) for p in experiment.spec.search.initial_points]
    generator = BasicVariantGenerator(points_to_evaluate=points or None, random_state=experiment.spec.seed,
                                      max_concurrent=max_concurrent or 0)
    return generator, to_tune(experiment.space, choices_are_grid=choices_are_grid)
