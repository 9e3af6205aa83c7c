"""k-fold cross-validation inside a trial: k learners (or k ensembles) in lockstep, mean and spread
reported, and the fold models kept as one averaged predictor scored on the test split."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables import evaluate_checkpoint, load_dataset, load_model, run_training
from trainables.checkpoint import load_checkpoint
from trainables.models import Ensemble, Recoded, Reindex, Rescale

WINE_3_FOLDS = {"name": "wine", "folds": 3}


def test_k_learners_report_the_mean_and_spread_of_their_folds(recorder, trial_context) -> None:
    run_training({"lr": 0.01}, trial_context("mlp", WINE_3_FOLDS, max_epochs=3), report=recorder)
    for report in recorder.reports:
        folds = [report[f"fold{i}_val_accuracy"] for i in range(3)]
        assert "fold3_val_accuracy" not in report
        assert report["val_accuracy"] == pytest.approx(np.mean(folds))
        assert report["val_accuracy_std"] == pytest.approx(np.std(folds))
        assert report["val_loss_std"] >= 0
        assert report["generalization_gap"] == pytest.approx(report["train_accuracy"] - report["val_accuracy"])
    state = load_checkpoint(recorder.checkpoints[3])
    assert len(state["learners"]) == 3 and state["model_config"]["folds"] == 3
    assert state["knobs"]["lr"] == 0.01 and "folds" not in state["knobs"]


def test_the_fold_models_are_averaged_into_one_predictor_on_the_plain_encoding(recorder, trial_context) -> None:
    run_training({"lr": 0.01}, trial_context("mlp", WINE_3_FOLDS), report=recorder)
    model = load_model(recorder.checkpoints[2])
    assert isinstance(model, Ensemble) and len(model.members) == 3
    assert all(isinstance(m, Recoded) and isinstance(m.recode, Rescale) for m in model.members)
    assert torch.equal(model.weights, torch.ones(3))

    data = load_dataset(WINE_3_FOLDS, seed=0)
    folds = data.folds(3, seed=0)
    with torch.no_grad():
        # each fold model on the test split as its own fold encoded it (scaling fitted per fold) ...
        own = torch.stack([m.model(part.x_test).softmax(1) for m, part in zip(model.members, folds)]).mean(0)
        # ... is what the combined predictor gives from the plain split's encoding
        combined = model(data.x_test).exp()
    assert torch.allclose(own, combined, atol=1e-5)
    test = evaluate_checkpoint(recorder.checkpoints[2])
    assert test["test_samples"] == len(data.y_test)
    assert test["test_accuracy"] == pytest.approx((combined.argmax(1) == data.y_test).double().mean().item())


def test_cross_validated_ensembles(recorder, trial_context) -> None:
    knobs = {"members": 2, "method": "boosting", "lr": 0.01}
    run_training(knobs, trial_context("ensemble", {"name": "breast_cancer", "folds": 2}), report=recorder)
    report = recorder.last
    assert {"fold0_val_accuracy", "fold1_val_accuracy", "member0_alpha", "member1_val_accuracy",
            "val_accuracy_std"} <= set(report)
    state = load_checkpoint(recorder.checkpoints[2])
    assert len(state["learners"]) == 4  # folds first, then members
    model = load_model(recorder.checkpoints[2])
    assert [type(m.model) for m in model.members] == [Ensemble, Ensemble]
    assert all(len(m.model.members) == 2 for m in model.members)
    assert torch.allclose(model.members[0].model.weights, state["model"]["members.0.model.weights"])
    assert 0.0 <= evaluate_checkpoint(recorder.checkpoints[2])["test_accuracy"] <= 1.0


def test_text_folds_map_the_plain_vocabulary_to_their_own(recorder, trial_context, small_text) -> None:
    data, knobs = small_text
    data = {**data, "folds": 2}
    run_training({**knobs, "lr": 0.01}, trial_context("rnn", data, max_epochs=1), report=recorder)
    model = load_model(recorder.checkpoints[1])
    plain = load_dataset(data, 0, vocab_size=knobs["vocab_size"], max_len=knobs["max_len"])
    for member, part in zip(model.members, plain.folds(2, 0)):
        assert isinstance(member.recode, Reindex)
        for plain_id, token in enumerate(plain.vocab):
            expected = part.vocab.index(token) if token in part.vocab else 1
            assert member.recode.ids[plain_id].item() == expected
    test = evaluate_checkpoint(recorder.checkpoints[1])
    assert 0.0 <= test["test_accuracy"] <= 1.0


def test_input_maps() -> None:
    rescale = Rescale((2,)).fit((torch.tensor([1.0, 2.0]), torch.tensor([2.0, 4.0])),
                                (torch.tensor([0.0, 2.0]), torch.tensor([1.0, 2.0])))
    raw = torch.tensor([[3.0, 6.0], [1.0, -2.0]])
    source = (raw - torch.tensor([1.0, 2.0])) / torch.tensor([2.0, 4.0])
    target = (raw - torch.tensor([0.0, 2.0])) / torch.tensor([1.0, 2.0])
    assert torch.allclose(rescale(source), target)
    assert torch.equal(Rescale((1, 2, 2)).fit(None, None)(raw.reshape(1, 1, 2, 2)), raw.reshape(1, 1, 2, 2))
    reindex = Reindex(6).fit(("<pad>", "<unk>", "a", "b", "c"), ("<pad>", "<unk>", "c", "a"))
    assert reindex(torch.tensor([[2, 3, 4, 1, 0]])).tolist() == [[3, 1, 2, 1, 0]]
