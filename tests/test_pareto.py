"""Several objectives end to end on Ray: a Pareto front with a constraint respected, MO-ASHA stopping
dominated trials at a rung, the front in `show`, `leaderboard.csv` and the plot, and any trial exported."""
from __future__ import annotations

import csv
import json

import pytest
from click.testing import CliRunner

import tunerd
from tunerd.cli import main

SPACE = """\
name: {name}
trainable: tests.fixtures.toy:tradeoff
objectives:
  - {{metric: error, mode: min}}
  - {{metric: cost, mode: min}}
constraints:
  cost: {{max: 8}}
seed: 1
space:
  size: {{randint: [0, 12]}}
  waste: {{choice: [0.0, 0.3]}}
  epochs: {epochs}
search: {{algorithm: {algorithm}, num_samples: {samples}}}
scheduler: {{name: {scheduler}, grace_period: 1, reduction_factor: 2}}
stop: {{max_epochs: {epochs}}}
"""


def launch(write_spec, tmp_path, *, name="front", algorithm="random", samples=10, scheduler="fifo", epochs=2):
    path = write_spec(SPACE.format(name=name, algorithm=algorithm, samples=samples, scheduler=scheduler,
                                   epochs=epochs), f"{name}.yaml")
    experiment = tunerd.load(path, storage=str(tmp_path / "results"))
    return tunerd.launch(experiment, quiet=True)


def dominates(a: dict, b: dict) -> bool:
    pairs = [(a["error"], b["error"]), (a["cost"], b["cost"])]
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


@pytest.fixture(scope="module")
def front_run(ray_session, tmp_path_factory):
    import os

    from tests.conftest import REPO

    tmp_path = tmp_path_factory.mktemp("pareto")
    previous = os.getcwd()
    os.chdir(REPO)  # the toy trainables import as tests.fixtures.toy
    try:
        def write_spec(text, name):
            path = tmp_path / name
            path.write_text(text)
            return path
        return launch(write_spec, tmp_path), tmp_path
    finally:
        os.chdir(previous)


def test_the_front_is_the_feasible_non_dominated_trials(front_run):
    outcome, _ = front_run
    summary = json.loads((outcome.folder / "summary.json").read_text())
    assert summary["state"] == "finished"
    assert summary["objectives"] == [{"metric": "error", "mode": "min"}, {"metric": "cost", "mode": "min"}]
    assert summary["constraints"] == {"cost": {"max": 8.0}}
    trials = {t["trial_id"]: t for t in summary["trials"]}
    feasible = [t for t in trials.values() if t["feasible"]]
    assert all((t["best"]["cost"] <= 8) == t["feasible"] for t in trials.values())
    assert any(not t["feasible"] for t in trials.values()), "seed 1 draws sizes above 8: some infeasible"
    front = summary["pareto"]
    assert len(front) >= 2
    for trial_id in front:  # feasible, and no feasible trial dominates it
        assert trials[trial_id]["feasible"]
        assert not any(dominates(other["best"], trials[trial_id]["best"]) for other in feasible)
    for other in feasible:  # and every feasible trial off the front is dominated by one on it
        if other["trial_id"] not in front:
            assert any(dominates(trials[i]["best"], other["best"]) for i in front)
    # best/: the lowest error among the feasible trials (select defaults to the first objective)
    assert summary["best"]["trial_id"] == min(feasible, key=lambda t: t["best"]["error"])["trial_id"]
    assert summary["best"]["metric"] == pytest.approx(trials[summary["best"]["trial_id"]]["best"]["error"])
    assert summary["metric"] == "error"


def test_leaderboard_ranks_feasible_fronts_first(front_run):
    outcome, _ = front_run
    rows = list(csv.DictReader((outcome.folder / "leaderboard.csv").open()))
    assert {"pareto_rank", "feasible"} <= set(rows[0])
    feasible = [row["feasible"] == "True" for row in rows]
    assert feasible == sorted(feasible, reverse=True)  # every feasible trial before every infeasible one
    ranks = [int(row["pareto_rank"]) for row in rows if row["feasible"] == "True"]
    assert ranks == sorted(ranks) and ranks[0] == 0


def test_show_prints_the_front_and_plots_it(front_run):
    outcome, tmp_path = front_run
    storage = str(tmp_path / "results")
    result = CliRunner().invoke(main, ["show", "front", "--storage", storage, "--plot", str(tmp_path / "f.png")])
    assert result.exit_code == 0, result.output
    assert "optimising error (min), cost (min) with cost <= 8" in result.output
    assert "Pareto front:" in result.output
    summary = json.loads((outcome.folder / "summary.json").read_text())
    for trial_id in summary["pareto"]:
        assert f"trial {trial_id}:" in result.output
    assert (tmp_path / "f.png").stat().st_size > 10_000
    shown = json.loads(CliRunner().invoke(main, ["show", "front", "--storage", storage, "--json"]).output)
    assert shown["pareto"] == summary["pareto"] and "cost" in shown["trials"][0]


def test_export_any_trial_of_the_front(front_run):
    outcome, tmp_path = front_run
    storage = str(tmp_path / "results")
    summary = json.loads((outcome.folder / "summary.json").read_text())
    other = next(i for i in summary["pareto"] if i != summary["best"]["trial_id"])
    result = CliRunner().invoke(main, ["export", "front", "--trial", other, "--storage", storage])
    assert result.exit_code == 0, result.output
    exported = outcome.folder / "exports" / f"trial_{other}"
    state = json.loads((exported / "state.json").read_text())
    assert state["epoch"] == 2  # its best report: the last epoch (error falls every epoch)
    bad = CliRunner().invoke(main, ["export", "front", "--trial", "nope", "--storage", storage])
    assert bad.exit_code == 2 and "has no trial 'nope'" in bad.output


@pytest.mark.parametrize("algorithm", ["tpe", "nsga2", "gp"])
def test_multi_objective_samplers_search_the_front(ray_session, in_repo, write_spec, tmp_path, algorithm):
    outcome = launch(write_spec, tmp_path, name=algorithm, algorithm=algorithm, samples=8, epochs=1)
    summary = json.loads((outcome.folder / "summary.json").read_text())
    assert summary["state"] == "finished" and len(summary["trials"]) == 8
    assert summary["pareto"] and summary["algorithm"]["name"] == algorithm


def test_mo_asha_stops_dominated_trials_at_a_rung(ray_session, in_repo, write_spec, tmp_path):
    outcome = launch(write_spec, tmp_path, name="moasha", algorithm="random", samples=12, scheduler="asha", epochs=4)
    summary = json.loads((outcome.folder / "summary.json").read_text())
    stopped = [t for t in summary["trials"] if t["status"] == "stopped"]
    finished = [t for t in summary["trials"] if t["status"] == "finished"]
    assert stopped and finished
    dominated_at_rung = 0
    for trial in stopped:  # stopped at a rung: epoch 1 or 2 (grace period 1, reduction factor 2, 4 epochs)
        rung = trial["epochs"]
        assert rung in (1, 2)
        at_rung = {h["epoch"]: h for h in trial["history"]}[rung]
        went_on = [h for t in summary["trials"] if t["epochs"] > rung for h in t["history"] if h["epoch"] == rung]
        # beaten there by a trial that went on: dominated, or it broke cost <= 8 where they did not (a front
        # member may also lose on crowding distance when the front is larger than the rung keeps)
        dominated_at_rung += any(dominates({k: h[k] for k in ("error", "cost")}, at_rung) or
                                 at_rung["cost"] > 8 >= h["cost"] for h in went_on)
    assert dominated_at_rung >= len(stopped) / 2

BUILT_IN = """\
name: builtin-front
trainable: mlp
data: {name: wine}
objectives:
  - {metric: val_accuracy, mode: max}
  - {metric: n_features, mode: min}
  - {metric: params, mode: min}
export: {quantize: true}
seed: 0
space:
  select_features: {grid: [3, 13]}
  prune: {grid: [0.0, 0.8]}
  units: 32
  lr: 0.02
  epochs: 4
search: {algorithm: grid}
scheduler: {name: fifo}
stop: {max_epochs: 4}
"""


def test_built_ins_trade_accuracy_for_features_and_pruned_weights(ray_session, write_spec, tmp_path):
    experiment = tunerd.load(write_spec(BUILT_IN), storage=str(tmp_path / "results"))
    outcome = tunerd.launch(experiment, quiet=True)
    summary = json.loads((outcome.folder / "summary.json").read_text())
    assert summary["state"] == "finished" and len(summary["trials"]) == 4
    by_knobs = {(t["config"]["select_features"], t["config"]["prune"]): t for t in summary["trials"]}
    for (k, _), trial in by_knobs.items():
        assert trial["last"]["n_features"] == k  # feature selection lowers n_features
        assert trial["last"]["latency_ms"] > 0 and trial["last"]["model_bytes"] > 0
        assert 0 <= trial["last"]["int8_val_accuracy"] <= 1 and trial["last"]["int8_bytes"] > 0
    for k in (3, 13):  # pruning lowers params (non-zero), by about the fraction of the weights
        dense, pruned = by_knobs[(k, 0.0)]["last"]["params"], by_knobs[(k, 0.8)]["last"]["params"]
        assert pruned < 0.4 * dense
        assert by_knobs[(k, 0.8)]["best"]["pruned"] is True  # a pruned trial's result is a pruned epoch
    assert by_knobs[(3, 0.0)]["last"]["params"] < by_knobs[(13, 0.0)]["last"]["params"]
    assert len(summary["pareto"]) >= 2 and summary["test"]["test_samples"] > 0
    # the winner's export is pruned when its trial was: zeros in the saved weights
    best = next(t for t in summary["trials"] if t["trial_id"] == summary["best"]["trial_id"])
    import torch

    weights = torch.load(outcome.folder / "best" / "model.pt", weights_only=True)
    zeros = sum(int((w == 0).sum()) for name, w in weights.items() if name.endswith("weight") and w.dim() > 1)
    assert (zeros > 0) == (best["config"]["prune"] > 0)
    # and any other trial exports the same way, test score and int8 copy included
    other = next(t["trial_id"] for t in summary["trials"] if t["trial_id"] != best["trial_id"])
    result = CliRunner().invoke(main, ["export", "builtin-front", "--trial", other,
                                       "--storage", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    assert "test set: accuracy" in result.output and "int8 copy" in result.output
    assert (outcome.folder / "exports" / f"trial_{other}" / "model_int8.pt").is_file()
