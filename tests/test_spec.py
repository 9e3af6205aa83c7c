"""The experiment file: defaults, every distribution, every error class, lines, overrides."""
from __future__ import annotations

import pytest

from tunerd import spec as speclib
from tunerd.errors import SpecError
from tunerd.space import Choice, Distribution, Grid

BASE = """\
name: t
trainable: tests.fixtures.toy:quadratic
metric: loss
mode: min
space:
  x: {uniform: [-5, 5]}
"""


def load_text(write_spec, text: str, *overrides: str):
    return speclib.load(write_spec(text), overrides)


def problems_of(write_spec, text: str, *overrides: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_text(write_spec, text, *overrides)
    return str(info.value).splitlines()


def test_defaults_are_the_spec_defaults(write_spec):
    experiment = load_text(write_spec, BASE)
    spec = experiment.spec
    assert (spec.search.algorithm, spec.scheduler.name, spec.scheduler.grace_period) == ("hyperopt", "asha", 2)
    assert spec.scheduler.reduction_factor == 3 and spec.stop.max_epochs == 20
    assert (spec.resources.cpu, spec.resources.gpu, spec.resources.workers) == (1, 0, 1)
    assert (spec.checkpoint.every, spec.checkpoint.keep, spec.failures.max_retries) == (1, 2, 2)
    assert experiment.data == spec.data == {} and spec.seed == 0  # a user's trainable: data as written
    assert spec.tensorboard is True and spec.export.quantize is False
    assert experiment.trial_count == 40
    assert experiment.storage.endswith("tunerd-results")


def test_every_distribution_kind_parses(write_spec):
    experiment = load_text(write_spec, BASE + """\
  a: {quniform: [0, 1, 0.25]}
  b: {loguniform: [1.0e-4, 1.0e-1]}
  c: {qloguniform: [1, 100, 1]}
  d: {randint: [1, 3]}
  e: {qrandint: [8, 64, 8]}
  f: {lograndint: [1, 1024]}
  g: {normal: [0, 1]}
  h: {choice: [relu, tanh]}
  i: {grid: [1, 2, 3]}
  group: {lr: {loguniform: [1e-3, 1e-1]}, depth: 2}
  cond: {choice: [{kind: sgd, momentum: {uniform: [0.5, 0.9]}}, {kind: adam}]}
  const: 7
""", "search.algorithm=random")
    space = experiment.space
    kinds = {k: v.kind for k, v in space.items() if isinstance(v, Distribution)}
    assert kinds == {"x": "uniform", "a": "quniform", "b": "loguniform", "c": "qloguniform", "d": "randint",
                     "e": "qrandint", "f": "lograndint", "g": "normal"}
    assert isinstance(space["h"], Choice) and isinstance(space["i"], Grid)
    assert isinstance(space["group"]["lr"], Distribution) and space["group"]["depth"] == 2
    assert isinstance(space["cond"].options[0]["momentum"], Distribution)
    assert space["group"]["lr"].args == (1e-3, 1e-1)  # `1e-3` is a float, not the string YAML 1.1 makes of it
    assert space["const"] == 7
    assert experiment.trial_count == 40 * 3  # random search crosses grid axes with the samples


@pytest.mark.parametrize("value, needle", [
    ("{loguniform: [-1, 0.1]}", "space.lr.loguniform: lower bound must be > 0"),
    ("{uniform: [1, 0]}", "space.lr.uniform: lower bound must be < upper bound"),
    ("{uniform: [1]}", "space.lr.uniform: must be a list of 2 numbers"),
    ("{uniform: [0, .inf]}", "space.lr.uniform: numbers must be finite"),
    ("{uniform: [a, 1]}", "space.lr.uniform: must be a list of 2 numbers"),
    ("{quniform: [0, 1, 0]}", "space.lr.quniform: q must be > 0"),
    ("{quniform: [0, 1, 5]}", "larger than the range"),
    ("{randint: [1.5, 3]}", "space.lr.randint: bounds must be integers"),
    ("{lograndint: [0, 8]}", "space.lr.lograndint: lower bound must be > 0"),
    ("{normal: [0, 0]}", "space.lr.normal: standard deviation must be > 0"),
    ("{choice: []}", "space.lr.choice: must be a non-empty list"),
    ("{grid: 3}", "space.lr.grid: must be a non-empty list"),
    ("{uniform: [0, 1], choice: [1]}", "space.lr: a distribution mapping must have exactly one key"),
])
def test_distribution_errors_name_the_key_path_and_line(write_spec, value, needle):
    lines = problems_of(write_spec, BASE + f"  lr: {value}\n")
    assert any(needle in line for line in lines), lines
    assert any(":7: space.lr" in line for line in lines), lines  # the file's line 7 holds `lr:`


def test_unknown_keys_get_did_you_mean_with_file_and_line(write_spec):
    lines = problems_of(write_spec, BASE + "search:\n  algoritm: hyperopt\nschedular: {name: asha}\n")
    text = "\n".join(lines)
    assert "space.yaml:8: search.algoritm: unknown key (did you mean 'algorithm'?)" in text
    assert "space.yaml:9: schedular: unknown key (did you mean 'scheduler'?)" in text


def test_bad_enum_values_and_types(write_spec):
    text = "\n".join(problems_of(write_spec, BASE.replace("mode: min", "mode: maximize")
                                 + "search: {algorithm: hyperop, num_samples: 0}\nresources: {cpu: two}\n"))
    assert ("search.algorithm: must be one of auto, bayesopt, cmaes, gp, grid, hyperopt, nsga2, random, tpe; got "
            "'hyperop' (did you mean 'hyperopt'?)") in text
    assert "search.num_samples: input should be greater than or equal to 1" in text
    assert "resources.cpu:" in text and "mode: must be one of max, min" in text


def test_missing_required_keys_and_bad_name(write_spec):
    text = "\n".join(problems_of(write_spec, "name: ../escape\nspace: {}\n"))
    assert "trainable: required key is missing" in text
    assert "name: must start with a letter or digit" in text


@pytest.mark.parametrize("content, needle", [
    (b"- just\n- a list\n", "must hold a mapping"),
    (b"", "must hold a mapping of keys"),
    (b"name: [unclosed\n", "not valid YAML"),
    (b"name: a\nname: b\n", "name: duplicate key"),
    (b"name: \xff\xfe\n", "not UTF-8 text"),
    (b"a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n",
     "expands to more than"),
    (b"name: !!python/object/apply:os.system [echo hacked]\n", "is not allowed"),
    (b"name: !!python/name:os.system\n", "not valid YAML"),
])
def test_malformed_files_are_spec_errors(tmp_path, content, needle):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as info:
        speclib.load(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_set_overrides_apply_yaml_values(write_spec):
    experiment = load_text(write_spec, BASE, "search.num_samples=8", "space.x.uniform=[0, 1]",
                           "search.algorithm=random", "stop.target=0.5")
    assert experiment.spec.search.num_samples == 8
    assert experiment.space["x"].args == (0, 1)
    assert experiment.spec.stop.target == 0.5


def test_set_override_errors_say_they_came_from_set(write_spec):
    lines = problems_of(write_spec, BASE, "space.x.uniform=[3, 1]")
    assert any("(from --set space.x.uniform)" in line for line in lines), lines
    assert any("expected KEY=VALUE" in line for line in problems_of(write_spec, BASE, "search.num_samples"))


def test_grid_rejects_continuous_and_hyperopt_rejects_grid(write_spec):
    text = "\n".join(problems_of(write_spec, BASE, "search.algorithm=grid"))
    assert "space.x.uniform: grid search needs discrete values" in text
    text = "\n".join(problems_of(write_spec, BASE + "  g: {grid: [1, 2]}\n"))
    assert "space.g.grid: hyperopt cannot search a grid axis" in text


def test_grid_trial_count_crosses_choices_and_grids(write_spec):
    experiment = load_text(write_spec, BASE.replace("{uniform: [-5, 5]}", "{choice: [1, 2]}")
                           + "  g: {grid: [1, 2, 3]}\n  c: {choice: [{a: {grid: [1, 2]}}, {a: 0}]}\n",
                           "search.algorithm=grid", "search.num_samples=2")
    assert experiment.trial_count == 2 * 3 * 3 * 2


def test_builtin_knobs_are_checked(write_spec):
    text = "\n".join(problems_of(write_spec, """\
name: t
trainable: cnn
space:
  lr: {loguniform: [1e-4, 1e-1]}
  dropuot: 0.2
  optimizer: {choice: [adam, sgdd]}
metric: val_acc
"""))
    assert "space.dropuot: 'cnn' has no knob 'dropuot' (did you mean 'dropout'?)" in text
    assert "optimizer must be one of" in text and "(did you mean 'sgd'?)" in text
    assert "metric: built-in trainables report" in text and "(did you mean 'val_accuracy'?)" in text


def test_unknown_builtin_and_data_set(write_spec):
    text = "\n".join(problems_of(write_spec, "name: t\ntrainable: cnnn\nspace: {lr: 0.1}\n"))
    assert "trainable: unknown built-in 'cnnn' (did you mean 'cnn'?)" in text
    text = "\n".join(problems_of(write_spec, "name: t\ntrainable: mlp\ndata: {name: wines}\nspace: {lr: 0.1}\n"))
    assert "data.name: unknown data set 'wines' (did you mean 'wine'?)" in text


def test_initial_points_must_name_parameters(write_spec):
    text = "\n".join(problems_of(write_spec, BASE + "search: {initial_points: [{xx: 1}]}\n"))
    assert "search.initial_points[0].xx: not a parameter of space (did you mean 'x'?)" in text


def test_storage_precedence(write_spec, monkeypatch, tmp_path):
    path = write_spec(BASE + "storage: from-file\n")
    monkeypatch.delenv("TUNERD_STORAGE", raising=False)
    assert speclib.load(path).storage.endswith("from-file")
    monkeypatch.setenv("TUNERD_STORAGE", str(tmp_path / "env"))
    assert speclib.load(path).storage == str(tmp_path / "env")
    assert speclib.load(path, storage=str(tmp_path / "cli")).storage == str(tmp_path / "cli")


def test_resolved_spec_round_trips(write_spec):
    experiment = load_text(write_spec, BASE, "search.num_samples=3")
    resolved = experiment.resolved()
    assert resolved["search"]["num_samples"] == 3 and resolved["scheduler"]["name"] == "asha"
    again = speclib.validate(resolved)
    assert again.resolved() == resolved and again.search_options == experiment.search_options


def test_initial_points_are_checked_against_choices(write_spec):
    conditional = BASE + "  b: {choice: [{k: 1, v: {uniform: [0, 1]}}, {k: 2}]}\n"
    text = "\n".join(problems_of(write_spec, conditional + "search: {initial_points: [{b: {k: 3}}]}\n"))
    assert "search.initial_points[0]: {'k': 3} is not one of the options of space.b.choice" in text
    random_start = "search: {algorithm: random, initial_points: [{b: {k: 1}}]}\n"
    text = "\n".join(problems_of(write_spec, conditional + random_start))
    assert "search.initial_points[0].b: random cannot start inside a conditional choice" in text
    assert load_text(write_spec, conditional + "search: {initial_points: [{b: {k: 1}, x: 0.5}]}\n")


def test_initial_point_values_are_range_checked(write_spec):
    points = "  n: {randint: [1, 4]}\nsearch: {initial_points: [{x: 7}, {n: 2.5}]}\n"
    text = "\n".join(problems_of(write_spec, BASE + points))
    assert "search.initial_points[0]: 7 is outside [-5, 5] (space.x.uniform)" in text
    assert "search.initial_points[1]: 2.5 is not an integer (space.n.randint)" in text


def test_data_section_rules(write_spec, tmp_path):
    builtin = "name: t\ntrainable: mlp\nspace: {lr: 0.1}\n"
    data = load_text(write_spec, builtin).data  # neither name nor path: digits, with the SPEC's defaults
    assert (data.name, data.val_fraction, data.test_fraction, data.folds) == ("digits", 0.2, 0.2, 0)
    text = "\n".join(problems_of(write_spec, builtin + "data: {name: wine, path: x.csv}\n"))
    assert "data: give either name" in text
    text = "\n".join(problems_of(write_spec, builtin + f"data: {{path: {tmp_path}/nothing.csv}}\n"))
    assert f"data.path: {tmp_path}/nothing.csv: no such file or folder" in text
    text = "\n".join(problems_of(write_spec, builtin + "data: {name: wine, folds: 1, colour: red}\n"))
    assert "data.folds: one fold is no cross-validation" in text and "data.colour: unknown key" in text


OBJECTIVES = """\
name: t
trainable: tests.fixtures.toy:tradeoff
objectives:
  - {metric: error, mode: min}
  - {metric: cost, mode: min}
space:
  size: {randint: [0, 12]}
"""


def test_objectives_set_the_goal_and_the_select_objective(write_spec):
    experiment = load_text(write_spec, OBJECTIVES + "constraints: {cost: {max: 8}}\nselect: {objective: cost}\n"
                                                    "search: {algorithm: nsga2}\n")
    goal = experiment.spec.goal()
    assert goal.metrics == ("error", "cost") and goal.select == "cost" and goal.is_multi
    assert [c.describe() for c in goal.constraints] == ["cost <= 8"]
    assert (experiment.spec.metric, experiment.spec.mode) == ("cost", "min")  # what best/ and checkpoints follow
    resolved = experiment.resolved()
    assert "metric" not in resolved and resolved["objectives"][1] == {"metric": "cost", "mode": "min"}
    assert speclib.validate(resolved).spec.goal() == goal  # spec.yaml validates again (resume)


def test_auto_with_several_objectives_picks_a_multi_objective_sampler(write_spec):
    experiment = load_text(write_spec, OBJECTIVES + "search: {num_samples: 40}\n")  # auto is their default
    assert experiment.algorithm.name == "tpe" and "2 objectives" in experiment.chosen_because
    assert experiment.resolved()["search"]["algorithm"] == "auto"
    assert load_text(write_spec, BASE).resolved()["search"]["algorithm"] == "hyperopt"  # one objective's default
    experiment = load_text(write_spec, OBJECTIVES + "search: {algorithm: auto, num_samples: 400}\n")
    assert experiment.algorithm.name == "nsga2"


def test_objective_mistakes_are_named(write_spec):
    text = "\n".join(problems_of(write_spec, OBJECTIVES.replace("cost, mode: min", "error, mode: max")
                                 + "metric: loss\nselect: {objective: eror}\nconstraints: {cost: {}, error: "
                                   "{min: 2, max: 1}}\nsearch: {algorithm: hyperopt}\nstop: {target: 0.1}\n"))
    assert "metric: give either metric/mode or objectives, not both" in text
    assert "objectives[1].metric: 'error' is already objective 0" in text
    assert "select.objective: must be one of the objectives (error, error); got 'eror'" in text
    assert "constraints.cost: give min, max or both" in text
    assert "constraints.error: min (2) is above max (1)" in text
    text = "\n".join(problems_of(write_spec, OBJECTIVES + "search: {algorithm: hyperopt}\nstop: {target: 0.1}\n"))
    assert "search.algorithm: hyperopt optimises one objective; with several objectives use gp, grid, nsga2, " \
           "random, tpe or auto" in text
    assert "stop.target: a target stops on one metric" in text


def test_built_in_metrics_and_tabular_knobs_are_checked_against_the_data(write_spec):
    base = ("name: t\ntrainable: mlp\ndata: {name: digits}\nobjectives:\n  - {metric: val_accuracy, mode: max}\n"
            "  - {metric: int8_bytes, mode: min}\nconstraints: {n_features: {max: 10}, latency: {max: 1}}\n"
            "space:\n  select_features: {choice: [4, 8]}\nsearch: {algorithm: tpe}\n")
    text = "\n".join(problems_of(write_spec, base))
    assert "objectives[1].metric: int8_bytes is measured on each trial's int8 copy: set export.quantize: true" in text
    assert "constraints.n_features: n_features is reported for tabular data; this data set is image" in text
    assert "constraints.latency: built-in trainables report" in text and "(did you mean 'latency_ms'?)" in text
    assert "space.select_features: select_features works on tabular data; this data set is image" in text
    experiment = load_text(write_spec, base.replace("digits", "wine").replace(", latency: {max: 1}", "")
                           + "export: {quantize: true}\n")
    assert experiment.spec.goal().metrics == ("val_accuracy", "int8_bytes")
