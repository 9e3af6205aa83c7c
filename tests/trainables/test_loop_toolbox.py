"""The shared loop's toolbox knobs, wired for every kind of trial: augment, init_from, freeze_features,
the learning-rate schedule and early stopping on ensembles."""
from __future__ import annotations

from typing import Any

import pytest
import torch

from trainables import loop, run_training
from trainables.checkpoint import load_checkpoint
from trainables.models import build_model


class AugmentSpy:
    """Stands in for `augment_batch`: records each call and returns the batch unchanged."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, x: torch.Tensor, **options: Any) -> torch.Tensor:
        self.calls.append({"rows": len(x), **options})
        return x


@pytest.mark.parametrize("trainable, data, knobs, batches", [
    ("mlp", "wine", {}, 2 * 2),  # 106 rows in batches of 64: 2 per epoch, 2 epochs
    ("ensemble", "wine", {"members": 3}, 3 * 2 * 2),
    ("mlp", {"name": "wine", "folds": 2}, {}, 2 * 2 * 2),  # 71 rows a fold: 2 batches
])
def test_augment_is_called_on_every_training_batch(trainable: str, data: Any, knobs: dict, batches: int,
                                                   recorder, trial_context, monkeypatch) -> None:
    spy = AugmentSpy()
    monkeypatch.setattr(loop, "augment_batch", spy)
    run_training({**knobs, "augment": 0.5}, trial_context(trainable, data), report=recorder)
    assert len(spy.calls) == batches
    first = spy.calls[0]
    assert first["kind"] == "tabular" and first["strength"] == 0.5 and first["flips"] is False
    assert first["generator"].device.type == "cpu"  # the data's device: draws need no copy


def test_augment_zero_never_calls_it(recorder, trial_context, monkeypatch) -> None:
    spy = AugmentSpy()
    monkeypatch.setattr(loop, "augment_batch", spy)
    run_training({"augment": 0.0}, trial_context(), report=recorder)
    assert spy.calls == []


def test_augmentation_changes_training_and_is_seeded(new_recorder, trial_context) -> None:
    runs = {}
    for name, strength in (("off", 0.0), ("on", 2.0), ("again", 2.0)):
        runs[name] = new_recorder()
        run_training({"augment": strength}, trial_context("cnn", "digits", max_epochs=1), report=runs[name])
    assert runs["on"].last["train_loss"] != runs["off"].last["train_loss"]
    assert runs["on"].last["train_loss"] == runs["again"].last["train_loss"]


class TransferStub:
    """Stands in for `apply_init_from`: 'loads' the classifier's bias as all 7s, skips the rest."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    def __call__(self, model: torch.nn.Module, init_from: str, *, storage: str | None,
                 data: dict | None = None) -> dict[str, list[str]]:
        self.calls.append((init_from, storage))
        self.data = data
        with torch.no_grad():
            model.classifier.bias.fill_(7.0)
        names = list(model.state_dict())
        return {"loaded": ["classifier.bias"], "skipped": [f"{n}: missing in the source" for n in names
                                                           if n != "classifier.bias"]}


@pytest.mark.parametrize("trainable, knobs, models", [("mlp", {}, 1), ("ensemble", {"members": 2}, 2)])
def test_init_from_starts_every_model_and_reports_what_it_loaded(trainable: str, knobs: dict, models: int,
                                                                 recorder, new_recorder, trial_context,
                                                                 monkeypatch, capsys) -> None:
    stub = TransferStub()
    monkeypatch.setattr(loop, "apply_init_from", stub)
    context = trial_context(trainable, max_epochs=3, storage="/somewhere")
    run_training({**knobs, "init_from": "source-exp", "lr": 1e-12}, context, report=recorder)
    assert stub.calls == [("source-exp", "/somewhere")] * models
    assert stub.data == context.data  # the trial's labels decide whether the source's head fits
    first, later = recorder.reports[0], recorder.reports[1:]
    assert first["transfer_loaded"] == 1 and first["transfer_skipped"] == 5  # mlp: 3 weights, 2 hidden biases
    assert all("transfer_loaded" not in report for report in later)
    printed = capsys.readouterr().out
    assert "init_from source-exp: loaded 1 tensors, skipped 5" in printed and "features.1.weight" in printed
    state = load_checkpoint(recorder.checkpoints[2])["model"]
    assert all(torch.allclose(v, torch.full_like(v, 7.0)) for k, v in state.items() if k.endswith("classifier.bias"))

    resumed = new_recorder()  # the checkpoint holds the weights: the source is not read again
    run_training({**knobs, "init_from": "source-exp", "lr": 1e-12}, context, report=resumed,
                 start_checkpoint=recorder.checkpoints[2])
    assert len(stub.calls) == models and "transfer_loaded" not in resumed.last


@pytest.mark.parametrize("trainable, knobs", [("mlp", {"batch_norm": True}), ("ensemble", {"members": 2})])
def test_freeze_features_trains_the_head_only(trainable: str, knobs: dict, recorder, trial_context) -> None:
    torch.manual_seed(0)
    run_training({**knobs, "freeze_features": True, "lr": 0.05}, trial_context(trainable, max_epochs=1),
                 report=recorder)
    trained = load_checkpoint(recorder.checkpoints[1])
    torch.manual_seed(0)  # the trial's seed: the same initial weights
    fresh = build_model(trained["trainable"], trained["model_config"], trained["input_shape"],
                        trained["n_classes"]).state_dict()
    for name, value in trained["model"].items():
        if ".features." in f".{name}" and value.is_floating_point():
            assert torch.equal(value, fresh[name]), name  # weights and batch-norm statistics alike
        elif "classifier" in name:
            assert not torch.equal(value, fresh[name]), name
    # only the head's parameters were given to each optimizer
    for learner in trained["learners"]:
        assert len(learner["optimizer"]["param_groups"][0]["params"]) == 2


def test_the_schedule_and_early_stopping_apply_to_ensembles(recorder, trial_context) -> None:
    run_training({"members": 2, "lr": 1e-12, "early_stopping_patience": 2, "lr_schedule": "cosine"},
                 trial_context("ensemble", max_epochs=10), report=recorder)
    assert [r["epoch"] for r in recorder.reports] == [1, 2, 3] and recorder.last["early_stopped"]
    state = load_checkpoint(recorder.checkpoints[3])
    lrs = [learner["optimizer"]["param_groups"][0]["lr"] for learner in state["learners"]]
    assert lrs == [pytest.approx(1e-12 * loop.lr_factor("cosine", 2, 10))] * 2
