"""HyperOpt (TPE) through Ray's `HyperOptSearch`, with tunerd's own translation of the space.

Why not let Ray translate: Ray labels the parameters of every branch of a conditional `choice` with the
same name (two branches that both have `lr` fail with hyperopt's `DuplicateLabel`), and its handling of
`points_to_evaluate` cannot reach inside a chosen branch. Here every parameter is labelled by its path
(`training/1/lr` for `lr` in option 1 of `training`), and initial points are translated to those labels.
"""
from __future__ import annotations

import math
from typing import Any

from hyperopt import hp
from hyperopt.pyll import scope

from tunerd.ray_internals import hyperopt_search_with_points
from tunerd.searchers._best_epoch import LearnsBestEpoch
from tunerd.space import Choice, Distribution, Grid, labelled_point


def _distribution(label: str, node: Distribution) -> Any:
    lo, hi, q = node.low, node.high, node.q
    if node.kind == "uniform":
        return hp.uniform(label, lo, hi)
    if node.kind == "quniform":
        return hp.quniform(label, lo, hi, q)
    if node.kind == "loguniform":
        return hp.loguniform(label, math.log(lo), math.log(hi))
    if node.kind == "qloguniform":
        return hp.qloguniform(label, math.log(lo), math.log(hi), q)
    if node.kind == "randint":
        return scope.int(hp.quniform(label, lo, hi, 1))
    if node.kind == "qrandint":
        return scope.int(hp.quniform(label, lo, hi, q))
    if node.kind == "lograndint":
        return scope.int(hp.qloguniform(label, math.log(lo), math.log(hi), 1))
    return hp.normal(label, lo, hi)  # normal: [mean, sd]


def to_hyperopt(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The hyperopt space for a parsed tree; labels are `/`-joined paths, unique across branches."""
    space: dict[str, Any] = {}
    for key, node in tree.items():
        label = f"{prefix}/{key}" if prefix else key
        if isinstance(node, dict):
            space[key] = to_hyperopt(node, label)
        elif isinstance(node, Distribution):
            space[key] = _distribution(label, node)
        elif isinstance(node, Choice):
            space[key] = hp.choice(label, [to_hyperopt(option, f"{label}/{i}") if isinstance(option, dict)
                                           else option for i, option in enumerate(node.options)])
        elif isinstance(node, Grid):
            raise ValueError(f"{node.path}: hyperopt cannot search a grid axis")
        else:
            space[key] = node
    return space


def point_to_labels(point: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    """A whole configuration as hyperopt's `{label: value}` (a choice's value is its option index)."""
    return labelled_point(point, tree, _slash_label)


def _slash_label(prefix: str, key: str) -> str:
    """`training/1/lr`, as `to_hyperopt` labels the space."""
    return f"{prefix}/{key}" if prefix else key


class TunerdHyperOptSearch(LearnsBestEpoch, hyperopt_search_with_points()):
    """Ray's HyperOptSearch (TPE, state saving, Tune integration) over tunerd's translation of the space."""

    def __init__(self, tree: dict[str, Any], *, metric: str, mode: str, points: list[dict[str, Any]],
                 n_initial_points: int, seed: int, observed: list[tuple[dict[str, Any], float]] = ()) -> None:
        """`observed`: earlier trials (whole configs and their values of the metric), a warm start."""
        super().__init__(space=to_hyperopt(tree), metric=metric, mode=mode,
                         points=[point_to_labels(p, tree) for p in points],
                         observed=[(point_to_labels(config, tree), value) for config, value in observed],
                         n_initial_points=n_initial_points, random_state_seed=seed)
