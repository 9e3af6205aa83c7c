"""Warm starts (`search.warm_start`): earlier trials mapped onto a new space, the errors at the edge, each
backend receiving them through its own API, and end to end on Ray without running them again."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import yaml

from tunerd import spec as speclib
from tunerd.errors import SpecError
from tunerd.space import parse_space
from tunerd.warmstart import MapNotes, Outside, map_config, searched_paths

SPACE = {"x1": {"uniform": [-5, 10]}, "x2": {"uniform": [0, 15]}}


def tree(space):
    problems: list = []
    parsed = parse_space(space, "space", problems)
    assert not problems
    return parsed


def earlier(storage, name, configs, values, *, metric="value", mode="min", data=None, statuses=None,
            trainable="tests.fixtures.toy:branin", space=None):
    """An earlier experiment's files, as a finished run leaves them (summary.json, spec.yaml)."""
    folder = storage / name
    folder.mkdir(parents=True)
    trials = [{"trial_id": f"t{i}", "index": i, "config": config, "status": (statuses or {}).get(i, "finished"),
               "epochs": 1, "best": {} if value is None else {metric: value, "epoch": 1}}
              for i, (config, value) in enumerate(zip(configs, values))]
    summary = {"name": name, "state": "finished", "metric": metric, "mode": mode, "trial_count": len(trials),
               "objectives": [{"metric": metric, "mode": mode}], "trials": trials}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "spec.yaml").write_text(yaml.safe_dump({"name": name, "trainable": trainable, "data": data or {},
                                                      **({"space": space} if space else {})}))
    return folder


def new_spec(storage, warm, *, algorithm="gp", space=None, metric="value", mode="min", data=None, **search):
    return {"name": "again", "trainable": "tests.fixtures.toy:branin", "metric": metric, "mode": mode,
            "data": data or {}, "space": space or SPACE, "storage": str(storage), "scheduler": {"name": "fifo"},
            "stop": {"max_epochs": 1}, "tensorboard": False,
            "search": {"algorithm": algorithm, "num_samples": 3, "warm_start": warm, **search}}


def problems(raw) -> list[str]:
    with pytest.raises(SpecError) as info:
        speclib.validate(raw)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


# --- mapping onto the new space -----------------------------------------------------------------------------

def test_removed_knobs_are_dropped_new_ones_drawn_and_constants_the_new_ones():
    new = tree({"lr": {"loguniform": [1e-4, 1e-1]}, "width": {"choice": [16, 32]}, "epochs": 30,
                "group": {"a": {"randint": [1, 4]}, "b": 2}})
    found = MapNotes()
    config = map_config({"lr": 0.01, "dropout": 0.3, "epochs": 20, "group": {"a": 3, "b": 2, "c": 1}}, new,
                        np.random.RandomState(0), found)
    assert config["lr"] == 0.01 and config["epochs"] == 30 and config["group"] == {"a": 3, "b": 2}
    assert config["width"] in (16, 32)
    assert found.dropped == {"space.dropout", "space.group.c"} and found.filled == {"space.width"}
    assert found.changed == {"space.epochs": (20, 30)}


@pytest.mark.parametrize("value", [20.0, -6.0, "x", None, float("nan")])
def test_a_value_the_new_distribution_cannot_produce_is_outside(value):
    with pytest.raises(Outside):
        map_config({"x1": value, "x2": 1.0}, tree(SPACE), np.random.RandomState(0))


@pytest.mark.parametrize("space, config", [
    ({"n": {"randint": [1, 8]}}, {"n": 2.5}),                        # not an integer
    ({"q": {"qrandint": [0, 100, 10]}}, {"q": 15}),                  # not a multiple of q
    ({"z": {"normal": [0, 1]}}, {"z": 3.5}),                         # beyond mean +- 3 sd (what backends search)
    ({"act": {"choice": ["relu", "tanh"]}}, {"act": "gelu"}),        # an option the choice no longer has
    ({"flag": {"choice": [True, False]}}, {"flag": 1}),              # 1 is not True
])
def test_integers_multiples_normals_and_choices_are_checked(space, config):
    with pytest.raises(Outside):
        map_config(config, tree(space), np.random.RandomState(0))


def test_a_conditional_option_is_found_by_its_constants_and_mapped_inside():
    new = tree({"model": {"choice": [{"kind": "a", "x": {"uniform": [-2, 2]}},
                                     {"kind": "b", "y": {"uniform": [0, 1]}, "z": {"randint": [1, 5]}}]}})
    found = MapNotes()
    config = map_config({"model": {"kind": "b", "y": 0.3, "old": 1}}, new, np.random.RandomState(0), found)
    assert config["model"]["kind"] == "b" and config["model"]["y"] == 0.3 and 1 <= config["model"]["z"] <= 5
    assert found.dropped == {"space.model.old"} and found.filled == {"space.model.z"}
    with pytest.raises(Outside):
        map_config({"model": {"kind": "a", "x": 3.0}}, new, np.random.RandomState(0))


# --- reading the earlier experiments: counts, and errors at the edge -----------------------------------------

def test_observations_counts_and_the_launch_line(tmp_path):
    configs = [{"x1": 1.0, "x2": 2.0, "gone": 1}, {"x1": 20.0, "x2": 2.0}, {"x1": 3.0, "x2": 4.0},
               {"x1": 0.0, "x2": 0.0}]
    earlier(tmp_path, "first", configs, [5.0, 1.0, None, 7.5], statuses={2: "errored"})
    experiment = speclib.validate(new_spec(tmp_path, ["first"], space={**SPACE, "extra": {"choice": [1, 2]}}))
    warm = experiment.warm_start
    assert [o.config["x1"] for o in warm.observations] == [1.0, 0.0]
    assert [o.config["extra"] for o in warm.observations] != [None, None]
    assert experiment.observations()[0][1] == 5.0
    assert warm.lines() == ["warm start: 2 observations from first (1 outside the new space dropped; 1 without a "
                            "result left out; knobs dropped: gone; knobs filled from the new space: extra)"]
    assert warm.record()[0]["observations"] == 2 and warm.record()[0]["where"] == f"{tmp_path}/first"


def test_an_entry_may_be_storage_slash_name(tmp_path):
    earlier(tmp_path / "elsewhere", "first", [{"x1": 1.0, "x2": 2.0}], [5.0])
    experiment = speclib.validate(new_spec(tmp_path / "here", [f"{tmp_path}/elsewhere/first"]))
    assert len(experiment.warm_start.observations) == 1


def test_a_knob_searched_before_and_fixed_now_keeps_only_the_trials_that_had_its_value(tmp_path):
    """`tunerd analyze --write` fixes an unimportant knob at the best trial's value: the earlier trials with
    another value are outside the new space (not observations of it, measured with another value)."""
    earlier(tmp_path, "first", [{"x1": 1.0, "x2": 2.0, "act": "relu"}, {"x1": 2.0, "x2": 3.0, "act": "tanh"}],
            [5.0, 4.0], space={**SPACE, "act": {"choice": ["relu", "tanh"]}})
    experiment = speclib.validate(new_spec(tmp_path, ["first"], space={**SPACE, "act": "tanh"}))
    assert [o.config for o in experiment.warm_start.observations] == [{"x1": 2.0, "x2": 3.0, "act": "tanh"}]
    assert experiment.warm_start.sources[0].outside == 1
    assert not any("ran with act" in w for w in experiment.warnings)
    assert searched_paths({"a": {"uniform": [0, 1]}, "g": {"b": {"choice": [1, 2]}, "c": 3}, "d": 4}) == {
        "space.a", "space.g.b"}


def test_a_changed_constant_is_a_warning(tmp_path):
    earlier(tmp_path, "first", [{"x1": 1.0, "x2": 2.0, "epochs": 20}], [5.0])
    experiment = speclib.validate(new_spec(tmp_path, ["first"], space={**SPACE, "epochs": 30}))
    assert any("first ran with epochs 20, this experiment with 30" in w for w in experiment.warnings)


def test_a_missing_experiment_names_the_key_path_and_the_storage(tmp_path):
    earlier(tmp_path, "first", [{"x1": 1.0, "x2": 2.0}], [5.0])
    found = problems(new_spec(tmp_path, ["frist"]))
    assert found == [f"search.warm_start[0]: no experiment 'frist' in storage {tmp_path} (did you mean 'first'?); "
                     "experiments there: first"]


def test_a_damaged_summary_names_the_file(tmp_path):
    folder = earlier(tmp_path, "first", [{"x1": 1.0, "x2": 2.0}], [5.0])
    (folder / "summary.json").write_text('{"name": "first", "trials": [')
    [found] = problems(new_spec(tmp_path, ["first"]))
    assert found.startswith(f"search.warm_start[0]: {folder}/summary.json is damaged: not valid JSON")


def test_another_metric_mode_or_data_names_both(tmp_path):
    earlier(tmp_path, "loss", [{"x1": 1.0, "x2": 2.0}], [5.0], metric="loss")
    earlier(tmp_path, "maxed", [{"x1": 1.0, "x2": 2.0}], [5.0], mode="max")
    earlier(tmp_path, "wine", [{"x1": 1.0, "x2": 2.0}], [5.0], data={"name": "wine"})
    found = problems(new_spec(tmp_path, ["loss", "maxed", "wine"], data={"name": "digits"}))
    assert found == [
        "search.warm_start[0]: loss optimised loss (min), this experiment optimises value (min)",
        "search.warm_start[0]: loss ran on data {}, this experiment on {'name': 'digits'}",
        "search.warm_start[1]: maxed optimised value (max), this experiment optimises value (min)",
        "search.warm_start[1]: maxed ran on data {}, this experiment on {'name': 'digits'}",
        "search.warm_start[2]: wine ran on data {'name': 'wine'}, this experiment on {'name': 'digits'}"]


def test_bad_entries_and_algorithms_that_cannot_take_observations(tmp_path):
    earlier(tmp_path, "first", [{"x1": 1.0, "x2": 2.0}], [5.0])
    found = problems(new_spec(tmp_path, ["first", "first", "again", "bad name", "s3://x"]))
    assert found == ["search.warm_start[1]: 'first' is already entry 0",
                     "search.warm_start[2]: again is this experiment itself; name an earlier one",
                     "search.warm_start[3]: 'bad name' is not an experiment name",
                     "search.warm_start[4]: 's3://x': expected NAME or STORAGE/NAME"]
    [refused] = problems(new_spec(tmp_path, ["first"], algorithm="random"))
    assert refused.startswith("search.warm_start: random cannot take earlier observations (it would run them "
                              "again); use ")
    assert "hyperopt" in refused and "bayesopt" in refused and "tpe" in refused and "gp" in refused
    assert problems(new_spec(tmp_path, "first")) == ["search.warm_start: input should be a valid list, got 'first'"]


# --- each backend receives them through its own API (no Ray) -------------------------------------------------

def _searcher(tmp_path, algorithm, warm, **search):
    experiment = speclib.validate(new_spec(tmp_path, warm, algorithm=algorithm, **search))
    searcher, _ = experiment.algorithm.build(experiment, max_concurrent=None)
    return experiment, searcher


@pytest.fixture
def branin_source(tmp_path):
    rng = np.random.RandomState(1)
    configs = [{"x1": float(rng.uniform(-5, 10)), "x2": float(rng.uniform(0, 15))} for _ in range(8)]
    values = [_branin(c) for c in configs]
    earlier(tmp_path, "first", configs, values)
    return configs


def _branin(c):
    b, cc, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (c["x2"] - b * c["x1"] ** 2 + cc * c["x1"] - 6) ** 2 + 10 * (1 - t) * math.cos(c["x1"]) + 10


@pytest.mark.parametrize("algorithm", ["hyperopt", "bayesopt", "tpe", "gp", "cmaes"])
def test_the_first_suggestion_is_the_model_s_not_the_cold_seed_s(tmp_path, branin_source, algorithm):
    """With 8 observations and a random start of 5, a warm searcher's first suggestion is a model's; a cold one's
    (the same seed) is random: they differ, and neither repeats an observation."""
    _, cold = _searcher(tmp_path, algorithm, [], random_initial=5)
    _, warm = _searcher(tmp_path, algorithm, ["first"], random_initial=5)
    first_cold, first_warm = cold.suggest("c0"), warm.suggest("w0")
    assert first_warm != first_cold
    assert first_warm not in branin_source


def test_optuna_backends_hold_them_as_completed_trials_that_resume_keeps(tmp_path, branin_source):
    import optuna

    from tunerd.ray_internals import optuna_study

    _, warm = _searcher(tmp_path, "tpe", ["first"])
    study = optuna_study(warm)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 8
    assert [t.value for t in study.trials] == [_branin(c) for c in branin_source]
    warm.save(str(tmp_path / "state.pkl"))  # what Ray saves with the experiment for `tunerd resume`
    _, restored = _searcher(tmp_path, "tpe", [])
    restored.restore(str(tmp_path / "state.pkl"))
    assert len(optuna_study(restored).trials) == 8


def test_bayesopt_registers_them_and_its_saved_state_keeps_them(tmp_path, branin_source):
    _, warm = _searcher(tmp_path, "bayesopt", ["first"])
    assert warm._warm == 8 and sorted(v for _, v in warm._observed) == sorted(_branin(c) for c in branin_source)
    warm.save(str(tmp_path / "state.json"))
    _, restored = _searcher(tmp_path, "bayesopt", [])
    restored.restore(str(tmp_path / "state.json"))
    assert restored._warm == 8 and len(restored._observed) == 8


def test_nsga2_takes_them_as_its_first_generation(tmp_path):
    from tunerd.ray_internals import ga_generation_key, optuna_study

    storage = tmp_path
    folder = storage / "first"
    folder.mkdir()
    objectives = [{"metric": "a", "mode": "min"}, {"metric": "b", "mode": "min"}]
    trials = [{"trial_id": f"t{i}", "index": i, "config": {"x1": float(i), "x2": 1.0}, "status": "finished",
               "best": {"a": float(i), "b": float(5 - i)}} for i in range(4)]
    (folder / "summary.json").write_text(json.dumps({"name": "first", "metric": "a", "mode": "min",
                                                     "objectives": objectives, "trials": trials}))
    (folder / "spec.yaml").write_text(yaml.safe_dump({"trainable": "tests.fixtures.toy:branin", "data": {}}))
    raw = new_spec(storage, ["first"], algorithm="nsga2", population_size=2)
    del raw["metric"], raw["mode"]
    experiment = speclib.validate({**raw, "objectives": objectives})
    searcher, _ = experiment.algorithm.build(experiment, max_concurrent=None)
    study = optuna_study(searcher)
    assert [t.values for t in study.trials] == [[float(i), float(5 - i)] for i in range(4)]
    assert {t.system_attrs[ga_generation_key(study.sampler)] for t in study.trials} == {0}


# --- end to end on Ray: observations learnt, never run ----------------------------------------------------

@pytest.mark.parametrize("algorithm", ["hyperopt", "bayesopt", "tpe", "gp"])
def test_a_warm_started_launch_runs_only_its_own_trials(ray_session, in_repo, tmp_path, branin_source, algorithm):
    from tunerd import api
    from tunerd.options import RunOptions

    raw = new_spec(tmp_path, ["first"], algorithm=algorithm, random_initial=5, max_concurrent=2)
    raw["search"]["num_samples"] = 2
    raw["name"] = f"warm-{algorithm}"
    path = tmp_path / f"{algorithm}.yaml"
    path.write_text(yaml.safe_dump(raw))
    experiment = api.load(path)
    _, cold = _searcher(tmp_path, algorithm, [], random_initial=5)
    outcome = api.launch(experiment, RunOptions(quiet=True))
    summary = outcome.record.summary()
    configs = [t.config for t in summary.trials]
    assert len(configs) == 2 and all(c not in branin_source for c in configs)  # nothing re-run
    assert summary.warm_start[0]["observations"] == 8
    assert json.loads((tmp_path / f"warm-{algorithm}" / "summary.json").read_text())["warm_start"] == \
        summary.warm_start
    # the model, not the cold seed's random start, chose: no trial is the cold searcher's first suggestion
    cold_first = cold.suggest("c0")
    assert cold_first not in configs


def test_validate_prints_the_warm_start_and_its_warnings(tmp_path):
    from click.testing import CliRunner

    from tunerd.cli import main

    earlier(tmp_path, "first", [{"x1": 1.0, "x2": 2.0, "epochs": 3}, {"x1": 12.0, "x2": 2.0, "epochs": 3}], [3.0, 1.0])
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(new_spec(tmp_path, ["first"], space={**SPACE, "epochs": 4})))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warm start: 1 observation from first (1 outside the new space dropped)" in result.output
    assert "warning: search.warm_start[0]: first ran with epochs 3, this experiment with 4" in result.output
