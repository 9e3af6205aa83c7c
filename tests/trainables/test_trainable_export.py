from __future__ import annotations

import json

import pytest
import torch

from trainables import evaluate_checkpoint, export_best, load_dataset, load_model, run_training
from trainables.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture
def checkpoint(recorder, trial_context):
    run_training({"lr": 3e-3, "batch_norm": True, "conv_layers": 1}, trial_context("cnn", "digits", seed=5),
                 report=recorder)
    return recorder.checkpoints[2], recorder.last


def test_export_load_evaluate_round_trip(checkpoint, tmp_path) -> None:
    folder, metrics = checkpoint
    dest = export_best(folder, tmp_path / "best")
    assert sorted(p.name for p in dest.iterdir()) == ["model.json", "model.pt"]
    record = json.loads((dest / "model.json").read_text())
    assert record["trainable"] == "cnn" and record["seed"] == 5 and record["epoch"] == 2
    assert record["model_config"]["conv_layers"] == 1 and record["input_shape"] == [1, 8, 8]
    assert record["knobs"]["lr"] == 3e-3 and record["data"]["name"] == "digits"

    exported, checkpointed = load_model(dest), load_model(folder)
    assert not exported.training and next(exported.parameters()).device.type == "cpu"
    data = load_dataset(record["data"], record["seed"])
    assert torch.equal(exported(data.x_test), checkpointed(data.x_test))

    test = evaluate_checkpoint(folder)
    assert set(test) == {"test_accuracy", "test_loss", "test_samples"}
    assert test["test_samples"] == len(data.y_test)
    predicted = exported(data.x_test).argmax(1)
    assert test["test_accuracy"] == pytest.approx((predicted == data.y_test).float().mean().item())
    assert evaluate_checkpoint(dest) == test
    # the rebuilt val split is the one the trial reported on
    val = evaluate_checkpoint(folder, split="val")
    assert val["val_accuracy"] == pytest.approx(metrics["val_accuracy"])
    assert val["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-5)


def test_export_overwrites_and_leaves_no_temporary_files(checkpoint, tmp_path) -> None:
    folder, _ = checkpoint
    export_best(folder, tmp_path / "best")
    export_best(folder, tmp_path / "best")
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["model.json", "model.pt"]


def test_missing_files_are_reported(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path)
    with pytest.raises(FileNotFoundError):
        export_best(tmp_path, tmp_path / "best")


def test_a_text_vocabulary_travels_into_model_json(checkpoint, tmp_path) -> None:
    folder, _ = checkpoint
    state = load_checkpoint(folder)
    vocab = ["<pad>", "<unk>", "good", "bad"]
    (tmp_path / "text").mkdir()
    save_checkpoint({**state, "vocab": vocab}, tmp_path / "text")
    record = json.loads((export_best(tmp_path / "text", tmp_path / "best") / "model.json").read_text())
    assert record["vocab"] == vocab
    plain = json.loads((export_best(folder, tmp_path / "plain") / "model.json").read_text())
    assert "vocab" not in plain
