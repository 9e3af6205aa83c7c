"""The registries of search algorithms and schedulers: one module per backend is found by listing its package,
every registered backend keeps the same contract, and validation, trial counting, concurrency and
`validate`'s plan read the declarations (a backend added as one module needs nothing else)."""
from __future__ import annotations

import importlib
import sys
import textwrap
from typing import Any

import pytest
from pydantic import BaseModel

from tunerd import api
from tunerd import spec as speclib
from tunerd.errors import SpecError
from tunerd.registry import Registry
from tunerd.schedulers import SCHEDULERS, Scheduler
from tunerd.searchers import ALGORITHMS, Accepts, NoOptions, SearchAlgorithm

FILE = {"name": "t", "trainable": "tests.fixtures.toy:quadratic", "metric": "loss", "mode": "min",
        "space": {"x": {"choice": [1.0, 2.0]}, "epochs": 2}}


def test_the_built_in_backends_are_registered():
    assert ALGORITHMS.names() == ("auto", "bayesopt", "cmaes", "gp", "grid", "hyperopt", "nsga2", "random", "tpe")
    assert SCHEDULERS.names() == ("asha", "fifo", "median")


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_every_algorithm_keeps_the_contract(name):
    algorithm = ALGORITHMS.get(name)
    assert isinstance(algorithm, SearchAlgorithm)
    assert algorithm.name == name == type(algorithm).__module__.rsplit(".", 1)[-1]  # the module is the name
    assert algorithm.summary and algorithm.default_num_samples >= 1 and isinstance(algorithm.accepts, Accepts)
    assert issubclass(algorithm.options, NoOptions) and algorithm.options.model_config["extra"] == "forbid"
    space = FILE["space"] if algorithm.accepts.categorical else {"x": {"randint": [1, 2]}, "epochs": 2}
    experiment = speclib.validate({**FILE, "space": space, "search": {"algorithm": name}})
    runs, why = algorithm.resolve(experiment.space, None)  # itself, but for auto
    assert experiment.algorithm is runs and isinstance(experiment.search_options, runs.options)
    assert (runs is algorithm) == (why == "") == (experiment.chosen_because == "")
    assert experiment.trial_count == algorithm.trial_count(experiment.space, experiment.spec.search.num_samples or
                                                           algorithm.default_num_samples)
    assert api.plan(experiment)["algorithm"].startswith(f"{name} ({algorithm.summary}" if runs is algorithm
                                                        else f"auto -> {runs.name} ({runs.summary}")
    # what it refuses, it refuses naming the key
    refused = {**FILE["space"], "g": {"grid": [1, 2]}, "u": {"uniform": [0, 1]}, "k": {"choice": ["a", "b"]},
               "c": {"choice": [{"k": 1}, {"k": 2, "v": {"choice": [3, 4]}}]}}
    paths = {p.path for p in algorithm.check(_parsed(refused), [{"c": {"k": 1}}])}
    assert ("space.g.grid" in paths) != algorithm.accepts.grid_axes
    assert ("space.u.uniform" in paths) != algorithm.accepts.continuous
    assert ("space.c.choice" in paths) != algorithm.accepts.conditional
    assert ("space.k.choice" in paths) != algorithm.accepts.categorical
    assert ("search.initial_points[0].c" in paths) != algorithm.accepts.conditional_initial_points


def _parsed(raw: dict[str, Any]) -> dict[str, Any]:
    from tunerd.space import parse_space

    problems: list = []
    tree = parse_space(raw, "space", problems)
    assert not problems
    return tree


@pytest.mark.parametrize("name", SCHEDULERS.names())
def test_every_scheduler_keeps_the_contract(name):
    from ray.tune.schedulers import TrialScheduler

    scheduler = SCHEDULERS.get(name)
    assert isinstance(scheduler, Scheduler) and scheduler.name == name and scheduler.summary
    experiment = speclib.validate({**FILE, "scheduler": {"name": name}})
    assert experiment.scheduler is scheduler and api.plan(experiment)["scheduler"].startswith(name)
    assert isinstance(scheduler.build(experiment.spec), TrialScheduler)
    late = {**FILE, "scheduler": {"name": name, "grace_period": 5}, "stop": {"max_epochs": 3}}
    if "grace_period" in scheduler.reads:
        with pytest.raises(SpecError, match="scheduler.grace_period: \\(5\\) exceeds stop.max_epochs \\(3\\)"):
            speclib.validate(late)
    else:
        speclib.validate(late)  # a key it does not read is accepted (for --set scheduler.name=...)


class _LatinOptions(NoOptions):
    strength: int = 2


class _Latin(SearchAlgorithm):
    """A backend that exists only in this test: declared, never built."""

    name = "latin"
    summary = "a test backend"
    accepts = Accepts(continuous=False, conditional=False)
    options = _LatinOptions
    learns = True
    default_num_samples = 7


@pytest.fixture
def with_latin(monkeypatch):
    found = dict(ALGORITHMS._backends())
    monkeypatch.setattr(ALGORITHMS, "_found", {**found, "latin": _Latin()})


def test_a_new_backend_is_read_everywhere_from_its_declaration(with_latin):
    experiment = speclib.validate({**FILE, "search": {"algorithm": "latin", "strength": 3}})
    assert experiment.trial_count == 7 and experiment.search_options == _LatinOptions(strength=3)
    assert api.plan(experiment)["algorithm"] == "latin (a test backend; strength 3)"
    assert experiment.resolved()["search"]["strength"] == 3
    with pytest.raises(SpecError, match="space.u.uniform: latin search needs discrete values"):
        speclib.validate({**FILE, "space": {"u": {"uniform": [0, 1]}}, "search": {"algorithm": "latin"}})
    with pytest.raises(SpecError, match="search.strenght: unknown key \\(did you mean 'strength'\\?\\)"):
        speclib.validate({**FILE, "search": {"algorithm": "latin", "strenght": 1}})
    # the concurrency rule reads `learns` (Ray Tune would let it have one pending trial otherwise)
    from tunerd.resources import max_concurrent

    nodes = [{"Alive": True, "Resources": {"CPU": 4.0}}]
    assert max_concurrent(experiment.spec.resources, None, nodes, model_based=experiment.algorithm.learns) == 4


def test_another_algorithms_option_is_a_warning_and_an_unknown_key_an_error():
    experiment = speclib.validate({**FILE, "search": {"algorithm": "hyperopt", "acquisition": "ucb"}})
    assert experiment.warnings == ("search.acquisition: an option of bayesopt, ignored by hyperopt",)
    assert "acquisition" not in experiment.resolved()["search"]
    with pytest.raises(SpecError, match="search.aquisition: unknown key \\(did you mean 'acquisition'\\?\\)"):
        speclib.validate({**FILE, "search": {"algorithm": "bayesopt", "aquisition": "ucb"}})
    with pytest.raises(SpecError, match="search.acquisition: must be one of ei, ucb, poi; got 'eii'"):
        speclib.validate({**FILE, "search": {"algorithm": "bayesopt", "acquisition": "eii"}})


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package of backend modules written for the test, importable as `fakebackends`."""
    root = tmp_path / "fakebackends"
    root.mkdir()
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m.startswith("fakebackends")]:
        del sys.modules[name]


def _backend(name: str) -> str:
    return textwrap.dedent(f"""\
        class B:
            name = {name!r}
        BACKEND = B()
        """)


def test_the_registry_finds_each_public_module_and_refuses_two_of_one_name(package):
    (package / "one.py").write_text(_backend("one"))
    (package / "two.py").write_text(_backend("two"))
    (package / "_shared.py").write_text("raise RuntimeError('a private module is not a backend')\n")
    (package / "base.py").write_text("raise RuntimeError('neither is base')\n")
    registry: Registry[Any] = Registry("fakebackends", "search algorithm")
    assert registry.names() == ("one", "two") and "one" in registry and "three" not in registry
    with pytest.raises(ValueError) as info:
        registry.get("onee")
    assert str(info.value) == "unknown search algorithm 'onee' (did you mean 'one'?); one of: one, two"
    (package / "three.py").write_text(_backend("one"))
    importlib.invalidate_caches()  # the import system caches a folder's listing
    with pytest.raises(RuntimeError, match="two search algorithms are named 'one'"):
        Registry("fakebackends", "search algorithm").names()


def test_options_models_are_pydantic():
    assert all(issubclass(a.options, BaseModel) for a in ALGORITHMS)


@pytest.mark.parametrize("space, budget, picked, why", [
    ({"x": {"uniform": [0, 1]}, "c": {"choice": [1, 2]}}, None, "gp", "2 searched parameters and a budget of 40"),
    ({"a": {"choice": [1, 2, 3]}, "b": {"choice": ["x", "y"]}}, None, "grid", "their 6 combinations fit"),
    ({"a": {"choice": [1, 2, 3]}, "b": {"choice": ["x", "y"]}}, 4, "gp", "a budget of 4 trials"),
    ({"x": {"uniform": [0, 1]}, "g": {"grid": [1, 2]}}, None, "random", "grid axes"),
    ({"m": {"choice": [{"k": 1}, {"k": 2, "v": {"uniform": [0, 1]}}]}}, None, "bayesopt", "a conditional choice"),
    ({"m": {"choice": [{"k": 1}, {"k": 2, "v": {"uniform": [0, 1]}}]}}, 250, "tpe", "a budget of 250 trials"),
    ({f"x{i}": {"uniform": [0, 1]} for i in range(13)}, None, "tpe", "13 searched parameters (over 12)"),
    ({"x": {"uniform": [0, 1]}}, 300, "tpe", "a budget of 300 trials (over 200)"),
])
def test_auto_picks_a_backend_from_the_space_and_the_budget_and_says_why(space, budget, picked, why):
    search = {"algorithm": "auto", **({"num_samples": budget} if budget else {})}
    experiment = speclib.validate({**FILE, "space": space, "search": search})
    assert experiment.algorithm.name == picked and why in experiment.chosen_because
    assert experiment.algorithm_label == f"auto -> {picked}"
    assert experiment.algorithm_record() == {"name": picked, "chosen_by": "auto", "why": experiment.chosen_because}
    assert api.plan(experiment)["algorithm"].startswith(f"auto -> {picked} (")
    assert experiment.resolved()["search"]["algorithm"] == "auto"  # spec.yaml: resume picks the same again
    if picked == "grid":
        assert experiment.trial_count == 6  # each combination once, whatever the budget
