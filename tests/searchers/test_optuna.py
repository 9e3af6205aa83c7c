"""Optuna's samplers as tunerd backends (tpe, gp, cmaes): tunerd's space as a define-by-run function, initial
points, conditional sub-spaces, what a finished trial teaches the sampler, and the state `resume` restores.
No Ray is started here (the end-to-end runs are in tests/test_searchers.py)."""
from __future__ import annotations

import math
import pickle

import pytest

from tunerd import spec as speclib
from tunerd.searchers import ALGORITHMS
from tunerd.searchers._optuna_search import TunerdOptunaSearch

OPTUNA = ("tpe", "gp", "cmaes")
SPACE = {"u": {"uniform": [-1, 1]}, "q": {"quniform": [0.05, 1.0, 0.1]}, "lu": {"loguniform": [1e-4, 1e-1]},
         "qlu": {"qloguniform": [1, 100, 5]}, "r": {"randint": [1, 3]}, "qr": {"qrandint": [8, 32, 8]},
         "lr": {"lograndint": [1, 64]}, "n": {"normal": [0, 1]}, "const": 7}


def experiment(algorithm: str, space: dict, **search):
    return speclib.validate({"name": "t", "trainable": "tests.fixtures.toy:quadratic", "metric": "loss",
                             "mode": "min", "seed": 1, "space": space,
                             "search": {"algorithm": algorithm, **search}})


def searcher(algorithm: str, space: dict, **search) -> TunerdOptunaSearch:
    built, param_space = experiment(algorithm, space, **search).algorithm.build(
        experiment(algorithm, space, **search), max_concurrent=None)
    assert param_space == {} and isinstance(built, TunerdOptunaSearch)
    return built


def finish(s: TunerdOptunaSearch, trial_id: str, loss: float) -> None:
    s.on_trial_result(trial_id, {"loss": loss, "training_iteration": 1})
    s.on_trial_complete(trial_id, {"loss": loss, "training_iteration": 1})


@pytest.mark.parametrize("algorithm", OPTUNA)
def test_every_kind_of_distribution_keeps_its_bounds_and_steps(algorithm):
    s = searcher(algorithm, SPACE, random_initial=3)
    for i in range(12):  # past the random start: the model suggests too
        config = s.suggest(f"t{i}")
        assert -1 <= config["u"] <= 1 and 1e-4 <= config["lu"] <= 1e-1 and -3 <= config["n"] <= 3
        assert 0.1 <= config["q"] <= 1.0 and math.isclose(config["q"] * 10, round(config["q"] * 10))
        assert 5 <= config["qlu"] <= 100 and config["qlu"] % 5 == 0
        assert config["r"] in (1, 2, 3) and config["qr"] in (8, 16, 24, 32) and 1 <= config["lr"] <= 64
        assert all(isinstance(config[k], int) for k in ("r", "qr", "lr")) and config["const"] == 7
        finish(s, f"t{i}", (config["u"] - 0.3) ** 2 + config["q"])


@pytest.mark.parametrize("algorithm", ["tpe", "gp"])
def test_conditional_branches_and_initial_points_inside_them(algorithm):
    space = {"branch": {"choice": [{"kind": "a", "lr": {"loguniform": [1e-4, 1e-2]}},
                                   {"kind": "b", "lr": {"uniform": [0.1, 0.9]}, "m": {"randint": [1, 4]}}]},
             "x": {"uniform": [0, 1]}}
    points = [{"branch": {"kind": "b", "lr": 0.5}}, {"x": 0.25, "branch": {"kind": "a"}}]
    s = searcher(algorithm, space, initial_points=points)
    first, second = s.suggest("t0"), s.suggest("t1")
    assert first["branch"]["kind"] == "b" and first["branch"]["lr"] == 0.5 and 1 <= first["branch"]["m"] <= 4
    assert second["x"] == 0.25 and second["branch"]["kind"] == "a" and set(second["branch"]) == {"kind", "lr"}
    finish(s, "t0", 1.0)
    finish(s, "t1", 2.0)
    kinds = set()
    for i in range(2, 14):
        config = s.suggest(f"t{i}")
        branch = config["branch"]
        kinds.add(branch["kind"])
        if branch["kind"] == "a":
            assert set(branch) == {"kind", "lr"} and 1e-4 <= branch["lr"] <= 1e-2
        else:
            assert set(branch) == {"kind", "lr", "m"} and 0.1 <= branch["lr"] <= 0.9
        finish(s, f"t{i}", config["x"] + (0 if branch["kind"] == "a" else 1))
    assert kinds == {"a", "b"}


@pytest.mark.parametrize("algorithm", OPTUNA)
def test_a_finished_trial_teaches_its_best_epoch_and_an_errored_one_nothing(algorithm):
    s = searcher(algorithm, {"x": {"uniform": [0, 1]}})
    s.suggest("stopped")
    for epoch, loss in enumerate([0.9, 0.4, 0.7], start=1):  # ASHA stops it after a worse epoch
        s.on_trial_result("stopped", {"loss": loss, "training_iteration": epoch})
    s.on_trial_complete("stopped", {"loss": 0.7, "training_iteration": 3})
    s.suggest("broken")
    s.on_trial_result("broken", {"loss": 0.1, "training_iteration": 1})
    s.on_trial_complete("broken", None, error=True)
    states = {t.number: (t.state.name, t.value) for t in s._ot_study.trials}
    assert states == {0: ("COMPLETE", 0.4), 1: ("FAIL", None)}


@pytest.mark.parametrize("algorithm", OPTUNA)
def test_the_saved_state_goes_on_where_it_stopped(algorithm, tmp_path):
    s = searcher(algorithm, {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}}, random_initial=2)
    def loss(config):
        return (config["x"] - 0.3) ** 2 + (config["y"] - 0.6) ** 2

    for i in range(4):
        config = s.suggest(f"t{i}")
        finish(s, f"t{i}", loss(config))
    running = s.suggest("t4")
    s.save(str(tmp_path / "state.pkl"))
    restored = searcher(algorithm, {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}}, random_initial=2)
    restored.restore(str(tmp_path / "state.pkl"))
    finish(restored, "t4", loss(running))  # the trial that ran while the state was saved
    nxt = restored.suggest("t5")
    trials = restored._ot_study.trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4, 5] and [t.state.name for t in trials[:5]] == ["COMPLETE"] * 5
    assert trials[4].value == pytest.approx(loss(running)) and 0 <= nxt["x"] <= 1
    assert pickle.loads(pickle.dumps(restored._space)).tree == restored._space.tree


def test_cmaes_takes_numbers_only():
    from tunerd.errors import SpecError

    with pytest.raises(SpecError, match="space.c.choice: cmaes searches numbers only, not a choice"):
        experiment("cmaes", {"x": {"uniform": [0, 1]}, "c": {"choice": ["a", "b"]}})
    assert experiment("cmaes", {"x": {"uniform": [0, 1]}, "c": {"choice": ["only"]}})  # one option: a constant


def test_every_optuna_backend_is_registered_and_learns():
    assert all(ALGORITHMS.get(name).learns for name in OPTUNA)
