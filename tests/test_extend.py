"""`tunerd resume NAME --extend N`: N more trials on a finished experiment, suggested by the searcher from its
saved state (no configuration repeated: a searcher started again from its seed would repeat the first ones),
with the record, the leaderboard and `spec.yaml` grown; and what cannot grow is refused before Ray starts."""
from __future__ import annotations

import csv
import json

import pytest
import yaml
from click.testing import CliRunner

import tunerd
from tunerd.cli import main
from tunerd.errors import UsageError

SPEC = """\
name: grow
trainable: tests.fixtures.toy:quadratic
metric: loss
mode: min
seed: 3
space:
  x: {{uniform: [0.0, 4.0]}}
  offset: {{loguniform: [0.01, 1.0]}}
  epochs: 1
search: {{algorithm: {algorithm}, num_samples: 3}}
scheduler: {{name: fifo}}
stop: {{max_epochs: 1}}
"""


def summary_of(storage) -> dict:
    return json.loads((storage / "grow" / "summary.json").read_text())


@pytest.mark.parametrize("algorithm", ["random", "hyperopt", "bayesopt", "tpe"])
def test_extend_runs_n_more_trials_from_where_the_searcher_stopped(algorithm, ray_session, in_repo, tmp_path):
    path = tmp_path / "grow.yaml"
    path.write_text(SPEC.format(algorithm=algorithm))
    storage = tmp_path / "results"
    first = tunerd.launch(tunerd.load(path, storage=str(storage)), quiet=True)
    assert first.state == "finished"
    before = summary_of(storage)

    grown = tunerd.resume("grow", storage=str(storage), extend=2, quiet=True)
    after = summary_of(storage)
    assert grown.state == "finished" and after["state"] == "finished"
    assert after["trial_count"] == 5 and len(after["trials"]) == 5
    assert all(t["status"] == "finished" for t in after["trials"])
    configs = [(t["config"]["x"], t["config"]["offset"]) for t in after["trials"]]
    assert len(set(configs)) == 5, configs  # no configuration repeated
    old = {t["trial_id"]: t for t in before["trials"]}
    for trial in after["trials"]:
        if trial["trial_id"] in old:  # kept, not run again
            assert trial["ended"] == old[trial["trial_id"]]["ended"]
    assert sorted(t["index"] for t in after["trials"]) == [0, 1, 2, 3, 4]
    with open(storage / "grow" / "leaderboard.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 5
    assert yaml.safe_load((storage / "grow" / "spec.yaml").read_text())["search"]["num_samples"] == 5
    best = min(t["best"]["loss"] for t in after["trials"])
    assert after["best"]["metric"] == best  # the best of all five trials


def test_a_finished_experiment_without_extend_says_how_to_grow_it(ray_session, in_repo, tmp_path):
    path = tmp_path / "grow.yaml"
    path.write_text(SPEC.format(algorithm="random").replace("num_samples: 3", "num_samples: 1"))
    storage = tmp_path / "results"
    tunerd.launch(tunerd.load(path, storage=str(storage)), quiet=True)
    result = CliRunner().invoke(main, ["resume", "grow", "--storage", str(storage)])
    assert result.exit_code == 2 and "--extend N" in result.output
    result = CliRunner().invoke(main, ["resume", "grow", "--storage", str(storage), "--extend", "0"])
    assert result.exit_code == 2 and "--extend" in result.output


def test_a_grid_cannot_grow_and_a_grid_axis_grows_a_whole_grid_at_a_time(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(SPEC.format(algorithm="grid").replace("x: {uniform: [0.0, 4.0]}", "x: {grid: [1.0, 2.0]}")
                    .replace("offset: {loguniform: [0.01, 1.0]}", "offset: 0.5"))
    with pytest.raises(UsageError, match="whole grid"):
        tunerd.load(path).samples_for(2)
    path.write_text(SPEC.format(algorithm="random").replace("x: {uniform: [0.0, 4.0]}", "x: {grid: [1.0, 2.0]}"))
    experiment = tunerd.load(path)
    assert experiment.samples_for(4) == 2
    with pytest.raises(UsageError, match="multiple of 2"):
        experiment.samples_for(3)


def test_a_trial_ray_never_saved_leaves_the_record_on_resume(ray_session, in_repo, tmp_path, caplog):
    """A trial that started after Ray Tune last saved its state, before the driver was killed, is in
    summary.json but not in the restored run; Ray's restored searcher suggests its configuration again, so
    the old record would stay `running` for ever beside a new copy (the 1,000-trial soak hit it). Here the
    race is set up by hand: a finished experiment's record gets such a trial, and is marked interrupted."""
    path = tmp_path / "grow.yaml"
    path.write_text(SPEC.format(algorithm="random"))
    storage = tmp_path / "results"
    tunerd.launch(tunerd.load(path, storage=str(storage)), quiet=True)
    summary_file = storage / "grow" / "summary.json"
    summary = json.loads(summary_file.read_text())
    ghost = {**summary["trials"][0], "trial_id": "ghost01", "index": 3, "status": "running", "ended": None}
    summary["trials"].append(ghost)
    summary.update(state="interrupted", driver=None)
    summary_file.write_text(json.dumps(summary))

    with caplog.at_level("WARNING", logger="tunerd"):
        outcome = tunerd.resume("grow", storage=str(storage), quiet=True)
    after = summary_of(storage)
    assert outcome.state == "finished" and after["state"] == "finished"
    assert sorted(t["trial_id"] for t in after["trials"]) == sorted(t["trial_id"] for t in summary["trials"][:3])
    assert "1 trial(s) started after Ray Tune last saved its state" in caplog.text and "ghost01" in caplog.text
