"""tunerd's distributions sampled as the SPEC says (integers inclusive, q-kinds on multiples, log-kinds
uniform in log space), both by tunerd itself (`space.sample`, for completing initial points) and through
the translation to Ray Tune's domains (grid and random search)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tunerd.errors import Problem
from tunerd.searchers._variants import to_tune
from tunerd.space import flatten, grid_size, parse_space, sample


def parsed(raw: dict):
    problems: list[Problem] = []
    tree = parse_space({"p": raw}, "space", problems)
    assert not problems, problems
    return tree["p"]


def ray_samples(raw: dict, n: int) -> np.ndarray:
    return np.array(to_tune({"p": parsed(raw)})["p"].sample(size=n, random_state=np.random.RandomState(0)))


def own_samples(raw: dict, n: int) -> np.ndarray:
    node, rng = parsed(raw), np.random.RandomState(0)
    return np.array([sample(node, rng) for _ in range(n)])


@pytest.fixture(params=[ray_samples, own_samples], ids=["ray", "tunerd"])
def samples(request):
    return lambda raw, n=4000: request.param(raw, n)


@pytest.mark.parametrize("raw, low, high", [
    ({"randint": [1, 3]}, 1, 3),
    ({"qrandint": [8, 32, 8]}, 8, 32),
    ({"lograndint": [1, 4]}, 1, 4),
])
def test_integer_bounds_are_inclusive(samples, raw, low, high):
    values = samples(raw)
    assert values.min() == low and values.max() == high
    assert all(float(v).is_integer() for v in values)


def test_q_distributions_round_to_multiples(samples):
    values = samples({"quniform": [0, 1, 0.25]})
    assert set(np.round(values / 0.25, 9)) <= {0, 1, 2, 3, 4}
    assert set(samples({"qrandint": [8, 32, 8]})) == {8, 16, 24, 32}
    assert all(math.isclose(v % 5, 0, abs_tol=1e-9) or math.isclose(v % 5, 5) for v in
               samples({"qloguniform": [5, 100, 5]}))


def test_log_uniform_is_uniform_in_log_space(samples):
    values = samples({"loguniform": [1e-4, 1e-1]})
    assert 1e-4 <= values.min() and values.max() <= 1e-1
    assert abs(np.median(np.log10(values)) - (-2.5)) < 0.1


def test_normal_and_uniform(samples):
    values = samples({"normal": [3, 2]})
    assert abs(values.mean() - 3) < 0.15 and abs(values.std() - 2) < 0.15
    values = samples({"uniform": [-1, 1]})
    assert -1 <= values.min() and values.max() <= 1


def test_choice_grid_and_nested_groups():
    problems: list[Problem] = []
    tree = parse_space({"a": {"choice": ["x", "y"]}, "g": {"grid": [1, 2]},
                        "group": {"b": {"choice": [{"k": 1}, {"k": {"grid": [2, 3]}}]}}}, "space", problems)
    assert not problems
    space = to_tune(tree)
    assert space["g"] == {"grid_search": [1, 2]}
    assert sorted(space["a"].categories) == ["x", "y"]
    gridded = to_tune(tree, choices_are_grid=True)
    assert gridded["a"] == {"grid_search": ["x", "y"]}
    assert grid_size(tree, choices_are_grid=True) == 2 * 2 * (1 + 2)
    assert grid_size(tree, choices_are_grid=False) == 2


def test_parameter_names_cannot_hold_separators():
    problems: list[Problem] = []
    parse_space({"a/b": 1, "c.d": 2, "ok": 3}, "space", problems)
    assert sorted(p.path for p in problems) == ["space.a/b", "space.c.d"]


def test_flatten_uses_slashes():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a/b": 1, "a/c/d": 2, "e": 3}


def test_choice_options_cannot_be_bare_distributions():
    problems: list[Problem] = []
    parse_space({"x": {"choice": [{"uniform": [0, 1]}, 2]}}, "space", problems)
    assert [p.path for p in problems] == ["space.x.choice[0]"]
    assert "name it in a sub-space" in problems[0].message


def test_complete_point_fills_what_is_missing_from_the_space():
    from tunerd.space import complete_point

    problems: list[Problem] = []
    tree = parse_space({"a": {"uniform": [0, 1]}, "g": {"b": {"choice": [{"k": {"randint": [1, 3]}}, 5]},
                                                         "c": 2}, "d": 7}, "space", problems)
    point = complete_point({"a": 0.5, "g": {"c": 9}}, tree, np.random.RandomState(0))
    assert point["a"] == 0.5 and point["g"]["c"] == 9 and point["d"] == 7
    assert point["g"]["b"] == 5 or 1 <= point["g"]["b"]["k"] <= 3
