"""Every search algorithm end to end on a real (small) Ray Tune experiment: one contract, run over every
registered backend that searches a continuous space (grid has its own test)."""
from __future__ import annotations

import json

import pytest

import tunerd
from tunerd.searchers import ALGORITHMS

CONTINUOUS = [a.name for a in ALGORITHMS if a.accepts.continuous]

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


@pytest.mark.parametrize("algorithm", CONTINUOUS)
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


@pytest.mark.parametrize("algorithm", CONTINUOUS)
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


@pytest.mark.parametrize("algorithm", ["hyperopt", "bayesopt"])
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


def test_bayesopt_learns_each_trials_best_epoch_through_ray(ray_session, in_repo, write_spec, tmp_path):
    """Through Ray Tune's wrappers (SearchGenerator, the concurrency cap) the GP is told a trial's best epoch,
    as tunerd ranks it: here `mode: max` on a loss that falls each epoch, so the best is epoch 1's."""
    outcome = run(write_spec, tmp_path, "bayesopt", **{"mode": "max", "search.num_samples": 3})
    [state_file] = outcome.folder.glob("searcher-state-*.pkl")  # tunerd's searcher saves JSON in it
    learned = sorted(value for _, value in json.loads(state_file.read_text())["observed"])
    trials = outcome.summary["trials"]
    assert learned == sorted(t["best"]["loss"] for t in trials)
    assert all(t["best"]["epoch"] == 1 and t["last"]["loss"] < t["best"]["loss"] for t in trials)
