"""Built-in trainables through the whole stack: real training on built-in data, best/, the test score."""
from __future__ import annotations

import json

import pytest
import torch

import trainables
import tunerd


def test_cnn_on_digits_exports_the_winner_and_scores_it_on_the_test_split(ray_session, write_spec, tmp_path):
    path = write_spec("""\
        name: digits-small
        trainable: cnn
        data: {name: digits}
        space:
          lr: {choice: [0.003, 0.01]}
          filters: 8
          dense_units: 32
          epochs: 3
        search: {algorithm: grid}
        scheduler: {name: fifo}
        stop: {max_epochs: 3}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "r")), quiet=True)
    summary = json.loads((outcome.folder / "summary.json").read_text())
    assert summary["state"] == "finished" and len(summary["trials"]) == 2
    for trial in summary["trials"]:
        assert trial["status"] == "finished" and trial["epochs"] == 3
        assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "generalization_gap",
                "samples_per_s"} <= set(trial["last"])
        assert [h["epoch"] for h in trial["history"]] == [1, 2, 3]
    assert summary["best"]["metric"] > 0.85
    assert summary["test"]["test_samples"] == 360 and 0.8 < summary["test"]["test_accuracy"] <= 1.0

    best = outcome.folder / "best"
    assert (best / "model.pt").exists() and (best / "model.json").exists()
    model = trainables.load_model(best)
    data = trainables.load_dataset({"name": "digits"}, seed=0)
    with torch.no_grad():
        predictions = model(data.x_test).argmax(dim=1)
    accuracy = (predictions == data.y_test).float().mean().item()
    assert accuracy == pytest.approx(summary["test"]["test_accuracy"], abs=1e-6)


def test_bayesopt_with_integer_and_choice_parameters_runs_to_the_end(ray_session, write_spec, tmp_path):
    path = write_spec("""\
        name: bo-wine
        trainable: mlp
        data: {name: wine}
        space:
          lr: {loguniform: [1.0e-3, 1.0e-1]}
          units: {randint: [8, 64]}
          hidden_layers: {randint: [1, 2]}
          activation: {choice: [relu, tanh]}
          epochs: 3
        search: {algorithm: bayesopt, num_samples: 6, random_initial: 3}
        scheduler: {name: fifo}
        stop: {max_epochs: 3}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "r")), quiet=True)
    trials = outcome.summary["trials"]
    assert outcome.state == "finished" and len(trials) == 6
    assert all(t["status"] == "finished" for t in trials)
    for trial in trials:
        config = trial["config"]
        assert isinstance(config["units"], int) and 8 <= config["units"] <= 64
        assert config["hidden_layers"] in (1, 2) and config["activation"] in ("relu", "tanh")
        assert 1e-3 <= config["lr"] <= 1e-1
    assert outcome.summary["test"]["test_accuracy"] > 0.5


def test_a_diverging_trial_is_recorded_as_diverged_and_the_experiment_goes_on(ray_session, write_spec, tmp_path):
    path = write_spec("""\
        name: diverge
        trainable: mlp
        data: {name: wine}
        space:
          lr: {grid: [0.01, 1.0e+12]}
          optimizer: sgd
          momentum: 0.9
          epochs: 4
        search: {algorithm: grid}
        scheduler: {name: fifo}
        stop: {max_epochs: 4}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "r")), quiet=True)
    by_lr = {t["config"]["lr"]: t for t in outcome.summary["trials"]}
    assert outcome.state == "finished"
    assert by_lr[1e12]["status"] == "diverged" and by_lr[1e12]["epochs"] < 4
    assert by_lr[0.01]["status"] == "finished"
    assert outcome.summary["best"]["config"]["lr"] == 0.01
