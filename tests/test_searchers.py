"""Every search algorithm end to end on a real (small) Ray Tune experiment: one contract, run over every
registered backend that searches a continuous space (grid has its own test)."""
from __future__ import annotations

import json

import pytest

import tunerd
from tunerd.searchers import ALGORITHMS

#: the algorithms that search SPACE (a number and a choice); cmaes (numbers only) has its own test
MIXED = [a.name for a in ALGORITHMS if a.accepts.continuous and a.accepts.categorical]
#: the model-based ones that search inside a conditional choice
CONDITIONAL = [a.name for a in ALGORITHMS
               if a.learns and a.accepts.conditional and a.accepts.conditional_initial_points]
LEARNING = [a.name for a in ALGORITHMS if a.learns and a.accepts.categorical]

SPACE = """\
name: {name}
trainable: tests.fixtures.toy:quadratic
metric: loss
mode: min
seed: 3
space:
  x: {{uniform: [-4, 6]}}
  offset: {{choice: [0.0, 0.5]}}
  epochs: 3
search: {{algorithm: {algorithm}, num_samples: 6, initial_points: [{{x: 2.0, offset: 0.0}}]}}
scheduler: {{name: fifo}}
stop: {{max_epochs: 3}}
"""


def run(write_spec, tmp_path, algorithm: str, name: str = "exp", **extra):
    path = write_spec(SPACE.format(name=name, algorithm=algorithm), f"{name}.yaml")
    overrides = [f"{k}={v}" for k, v in extra.items()]
    experiment = tunerd.load(path, overrides, storage=str(tmp_path / "results"))
    return tunerd.launch(experiment, quiet=True)


@pytest.mark.parametrize("algorithm", MIXED)
def test_searcher_runs_every_trial_and_tries_initial_points_first(ray_session, in_repo, write_spec, tmp_path,
                                                                 algorithm):
    outcome = run(write_spec, tmp_path, algorithm)
    summary = json.loads((outcome.folder / "summary.json").read_text())
    assert outcome.state == "finished" and summary["state"] == "finished"
    trials = summary["trials"]
    assert len(trials) == 6 and all(t["status"] == "finished" and t["epochs"] == 3 for t in trials)
    assert trials[0]["config"]["x"] == 2.0 and trials[0]["config"]["offset"] == 0.0
    for trial in trials:
        assert -4 <= trial["config"]["x"] <= 6 and trial["config"]["offset"] in (0.0, 0.5)
        assert trial["config"]["epochs"] == 3  # constants reach the trainable
    # the initial point is the optimum: it must win
    assert summary["best"]["config"]["x"] == 2.0
    assert summary["best"]["metric"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("algorithm", MIXED)
def test_same_seed_same_configurations(ray_session, in_repo, write_spec, tmp_path, algorithm):
    configs = []
    for name in ("first", "second"):
        outcome = run(write_spec, tmp_path, algorithm, name=name, **{"search.max_concurrent": 1})
        configs.append([t["config"] for t in outcome.summary["trials"]])
    assert configs[0] == configs[1]
    assert len({json.dumps(c, sort_keys=True) for c in configs[0]}) == 6  # no repeats


def test_grid_crosses_choices_and_grid_axes(ray_session, in_repo, write_spec, tmp_path):
    path = write_spec("""\
        name: grid
        trainable: tests.fixtures.toy:quadratic
        metric: loss
        mode: min
        space:
          x: {choice: [1.0, 2.0, 3.0]}
          offset: {grid: [0.0, 10.0]}
          epochs: 2
        search: {algorithm: grid}
        scheduler: {name: fifo}
        stop: {max_epochs: 2}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "results")), quiet=True)
    pairs = sorted((t["config"]["x"], t["config"]["offset"]) for t in outcome.summary["trials"])
    assert pairs == [(x, o) for x in (1.0, 2.0, 3.0) for o in (0.0, 10.0)]
    assert outcome.summary["best"]["config"] == {"x": 2.0, "offset": 0.0, "epochs": 2}


def test_hyperopt_with_nested_groups(ray_session, in_repo, write_spec, tmp_path):
    path = write_spec("""\
        name: nested
        trainable: tests.fixtures.toy:branin
        metric: value
        mode: min
        space:
          group: {x1: {uniform: [-5, 10]}}
          x2: {choice: [2.275, 8.0, 12.0]}
        search: {algorithm: hyperopt, num_samples: 8, initial_points: [{group: {x1: 3.14159}, x2: 2.275}]}
        scheduler: {name: fifo}
        stop: {max_epochs: 1}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "results")), quiet=True)
    trials = outcome.summary["trials"]
    assert len(trials) == 8
    assert trials[0]["config"]["group"]["x1"] == pytest.approx(3.14159)
    assert outcome.summary["best"]["metric"] == pytest.approx(0.397887, abs=1e-3)
    assert all(-5 <= t["config"]["group"]["x1"] <= 10 for t in trials)


def test_hyperopt_completes_partial_initial_points(ray_session, in_repo, write_spec, tmp_path):
    path = write_spec("""\
        name: partial
        trainable: tests.fixtures.toy:branin
        metric: value
        mode: min
        space:
          x1: {uniform: [-5, 10]}
          x2: {uniform: [0, 15]}
        search: {algorithm: hyperopt, num_samples: 3, initial_points: [{x1: 3.14159}]}
        scheduler: {name: fifo}
        stop: {max_epochs: 1}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "results")), quiet=True)
    first = outcome.summary["trials"][0]["config"]
    assert first["x1"] == pytest.approx(3.14159) and 0 <= first["x2"] <= 15


@pytest.mark.parametrize("algorithm", CONDITIONAL)
def test_conditional_sub_spaces_sharing_parameter_names(ray_session, in_repo, write_spec, tmp_path, algorithm):
    path = write_spec(f"""\
        name: cond-{algorithm}
        trainable: tests.fixtures.toy:conditional
        metric: loss
        mode: min
        space:
          branch:
            choice:
              - {{offset: 1.0, x: {{uniform: [-4, 0]}}}}
              - {{offset: 0.0, x: {{uniform: [0, 6]}}}}
        search: {{algorithm: {algorithm}, num_samples: 8, initial_points: [{{branch: {{offset: 0.0, x: 2.0}}}}]}}
        scheduler: {{name: fifo}}
        stop: {{max_epochs: 1}}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "results")), quiet=True)
    configs = [t["config"]["branch"] for t in outcome.summary["trials"]]
    assert len(configs) == 8 and configs[0] == {"offset": 0.0, "x": 2.0}
    for branch in configs:
        assert (branch["offset"] == 1.0 and -4 <= branch["x"] <= 0) or \
            (branch["offset"] == 0.0 and 0 <= branch["x"] <= 6)
    assert {b["offset"] for b in configs} == {0.0, 1.0}  # both branches are explored
    assert outcome.summary["best"]["metric"] == 0.0


def _learned(folder, algorithm: str, metric: str, mode: str) -> list[float]:
    """The values each model-based searcher holds for its finished trials, read from the state it saved."""

    import cloudpickle

    [state_file] = folder.glob("searcher-state-*.pkl")
    if algorithm == "bayesopt":  # tunerd's own searcher saves JSON
        return sorted(value for _, value in json.loads(state_file.read_text())["observed"])
    state = cloudpickle.loads(state_file.read_bytes())
    if algorithm == "hyperopt":  # hyperopt minimises: a max metric is stored negated
        sign = -1 if mode == "max" else 1
        return sorted(sign * t["result"]["loss"] for t in state["_hpopt_trials"].trials if t["result"].get("loss")
                      is not None)
    return sorted(t.value for t in state["_ot_study"].trials if t.value is not None)  # Optuna's samplers


@pytest.mark.parametrize("algorithm", LEARNING)
def test_each_model_based_searcher_learns_a_trials_best_epoch_through_ray(ray_session, in_repo, write_spec,
                                                                         tmp_path, algorithm):
    """Through Ray Tune's wrappers (SearchGenerator, the concurrency cap) each model-based searcher is told a
    trial's best epoch, as tunerd ranks it, also for the trials ASHA stopped: a loss that worsens each epoch,
    so every trial's best is its first; trials one at a time, the first at the optimum, so that ASHA stops
    the next ones at epoch 1 and lets the good ones run on to worse epochs."""
    outcome = run(write_spec, tmp_path, algorithm, **{
        "trainable": "tests.fixtures.toy:worsening", "search.num_samples": 5, "search.max_concurrent": 1,
        "scheduler.name": "asha", "scheduler.grace_period": 1, "scheduler.reduction_factor": 2})
    trials = outcome.summary["trials"]
    assert {t["status"] for t in trials} == {"finished", "stopped"}
    assert all(t["best"]["epoch"] == 1 for t in trials)
    assert any(t["last"]["loss"] > t["best"]["loss"] for t in trials)  # a later epoch was worse
    learned = _learned(outcome.folder, algorithm, "loss", "min")
    assert learned == pytest.approx(sorted(t["best"]["loss"] for t in trials))


def test_cmaes_searches_numbers(ray_session, in_repo, write_spec, tmp_path):
    path = write_spec("""\
        name: cma
        trainable: tests.fixtures.toy:branin
        metric: value
        mode: min
        seed: 1
        space: {x1: {uniform: [-5, 10]}, x2: {uniform: [0, 15]}}
        search: {algorithm: cmaes, num_samples: 12, initial_points: [{x1: 3.14159, x2: 2.275}]}
        scheduler: {name: fifo}
        stop: {max_epochs: 1}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "results")), quiet=True)
    trials = outcome.summary["trials"]
    assert len(trials) == 12 and trials[0]["config"] == {"x1": 3.14159, "x2": 2.275}
    assert all(-5 <= t["config"]["x1"] <= 10 and 0 <= t["config"]["x2"] <= 15 for t in trials)
    assert len({(t["config"]["x1"], t["config"]["x2"]) for t in trials}) == 12
    assert outcome.summary["best"]["metric"] == pytest.approx(0.397887, abs=1e-3)


def test_auto_runs_what_it_picked_and_records_why(ray_session, in_repo, write_spec, tmp_path):
    outcome = run(write_spec, tmp_path, "auto", **{"search.num_samples": 4})
    summary = json.loads((outcome.folder / "summary.json").read_text())
    assert summary["algorithm"]["name"] == "gp" and summary["algorithm"]["chosen_by"] == "auto"
    assert "searched parameters" in summary["algorithm"]["why"]
    assert len(summary["trials"]) == 4 and summary["trials"][0]["config"] == {"x": 2.0, "offset": 0.0, "epochs": 3}
