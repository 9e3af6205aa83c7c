"""The ensemble built-in: bagging beats its members, SAMME's weights and alphas, reporting, and export."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from trainables import evaluate_checkpoint, load_model, run_training
from trainables.checkpoint import load_checkpoint
from trainables.configs import BASES
from trainables.loop import ERR_CLIP, Committee, Learner, Split, boost, member_rows
from trainables.models import FAMILIES, Ensemble
from trainables.models.ensemble import combine

#: weak members: one narrow hidden layer, two epochs
WEAK = {"members": 7, "hidden_layers": 1, "units": 8, "lr": 0.01, "epochs": 2, "batch_size": 32}


def member_values(metrics: dict, suffix: str) -> list[float]:
    return [value for key, value in sorted(metrics.items()) if key.startswith("member") and key.endswith(suffix)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_bagged_ensemble_of_weak_members_beats_its_average_member(seed: int, recorder, trial_context) -> None:
    run_training(WEAK, trial_context("ensemble", "digits", seed=seed), report=recorder)
    metrics = recorder.last
    members = member_values(metrics, "_val_accuracy")
    assert len(members) == 7
    assert metrics["val_accuracy"] > np.mean(members) + 0.05
    assert metrics["val_accuracy"] >= max(members)


def test_every_member_is_reported_each_epoch(recorder, new_recorder, trial_context) -> None:
    run_training({"members": 3, "method": "boosting"}, trial_context("ensemble", "wine"), report=recorder)
    for report in recorder.reports:
        for i in range(3):
            assert {f"member{i}_train_accuracy", f"member{i}_val_accuracy", f"member{i}_alpha"} <= set(report)
        assert "member3_val_accuracy" not in report
        assert report["generalization_gap"] == pytest.approx(report["train_accuracy"] - report["val_accuracy"])
    bagged = new_recorder()
    run_training({"members": 2}, trial_context("ensemble", "wine"), report=bagged)
    assert "member0_alpha" not in bagged.last and "member1_val_accuracy" in bagged.last


def fake_committee(y: torch.Tensor, members: int) -> Committee:
    learners = [Learner(nn.Identity(), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1), [],
                        sample_weight=torch.ones(len(y))) for _ in range(members)]
    split = Split(torch.zeros(len(y), 1), y)
    return Committee(split, split, learners, "boosting", Ensemble([nn.Identity() for _ in range(members)]))


def logits_predicting(labels: torch.Tensor, n_classes: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, n_classes).float() * 5


def test_samme_weights_misclassified_rows_up_and_weighs_members_by_their_error() -> None:
    y = torch.arange(100) % 3
    wrong = (y + 1) % 3
    first = torch.where(torch.arange(100) < 10, wrong, y)  # 10% wrong: rows 0..9
    perfect = y
    chance = torch.where(torch.arange(100) < 80, wrong, y)  # worse than chance (2/3 for 3 classes)
    committee = fake_committee(y, 4)
    boost(committee, [logits_predicting(p) for p in (first, perfect, chance, perfect)], n_classes=3)
    alphas = committee.predictor.weights
    weights = [learner.sample_weight for learner in committee.learners]

    assert torch.equal(weights[0], torch.ones(100))  # the first member always sees uniform weights
    assert alphas[0].item() == pytest.approx(math.log(0.9 / 0.1) + math.log(2), rel=1e-5)
    # the second member trains on rows the first got wrong with exp(alpha_1) = 18 times the weight
    assert weights[1].mean().item() == pytest.approx(1.0, rel=1e-5)
    assert torch.allclose(weights[1][:10] / weights[1][10], torch.full((10,), 18.0), rtol=1e-4)
    # a perfect member gets a large alpha (its error is clipped, not zero) and changes no weight
    assert alphas[1].item() == pytest.approx(math.log((1 - ERR_CLIP) / ERR_CLIP) + math.log(2), rel=1e-4)
    assert alphas[1].item() > 10
    assert torch.allclose(weights[2], weights[1], rtol=1e-4)
    # a member no better than chance gets alpha 0 and also changes no weight
    assert alphas[2].item() == 0.0
    assert torch.allclose(weights[3], weights[2], rtol=1e-4)


def test_combining_averages_probabilities_with_the_weights() -> None:
    a, b = torch.randn(5, 3), torch.randn(5, 3)
    pa, pb = a.softmax(1), b.softmax(1)
    assert torch.allclose(combine([a, b], torch.ones(2)).exp(), (pa + pb) / 2, atol=1e-6)
    assert torch.allclose(combine([a, b], torch.tensor([3.0, 1.0])).exp(), 0.75 * pa + 0.25 * pb, atol=1e-6)
    assert torch.allclose(combine([a, b], torch.zeros(2)).exp(), (pa + pb) / 2, atol=1e-6)  # all 0: equal
    members = [nn.Linear(4, 3), nn.Linear(4, 3)]
    ensemble = Ensemble(members)
    ensemble.weights.copy_(torch.tensor([2.0, 0.5]))
    x = torch.randn(6, 4)
    expected = (2.0 * members[0](x).softmax(1) + 0.5 * members[1](x).softmax(1)) / 2.5
    assert torch.allclose(ensemble(x).exp(), expected, atol=1e-6)


def test_members_draw_their_own_seeded_rows() -> None:
    bags = [member_rows("bagging", 0.5, 100, (0, 0, m)) for m in range(3)]
    assert all(len(rows) == 50 for rows in bags)
    assert any(len(rows.unique()) < len(rows) for rows in bags)  # drawn with replacement
    assert not torch.equal(bags[0], bags[1])
    assert torch.equal(bags[0], member_rows("bagging", 0.5, 100, (0, 0, 0)))
    assert member_rows("boosting", 1.0, 100, (0, 0, 0)) is None
    subsample = member_rows("boosting", 0.3, 100, (0, 0, 0))
    assert len(subsample) == 30 and len(subsample.unique()) == 30


def test_boosting_state_is_checkpointed_and_the_export_scores_as_reported(recorder, trial_context) -> None:
    run_training({"members": 3, "method": "boosting", "lr": 0.01}, trial_context("ensemble", "breast_cancer"),
                 report=recorder)
    state = load_checkpoint(recorder.checkpoints[2])
    alphas = member_values(recorder.last, "_alpha")
    assert torch.allclose(state["model"]["weights"], torch.tensor(alphas), atol=1e-6)
    assert state["model_config"]["members"] == 3 and state["model_config"]["method"] == "boosting"
    weights = [learner["sample_weight"] for learner in state["learners"]]
    assert len(weights) == 3 and torch.equal(weights[0], torch.ones_like(weights[0]))
    assert all(w.mean().item() == pytest.approx(1.0, rel=1e-4) for w in weights)

    model = load_model(recorder.checkpoints[2])
    assert isinstance(model, Ensemble) and len(model.members) == 3
    assert torch.allclose(model.weights, state["model"]["weights"])
    val = evaluate_checkpoint(recorder.checkpoints[2], split="val")
    assert val["val_accuracy"] == pytest.approx(recorder.last["val_accuracy"])
    assert val["val_loss"] == pytest.approx(recorder.last["val_loss"], rel=1e-5)
    assert 0.0 <= evaluate_checkpoint(recorder.checkpoints[2])["test_accuracy"] <= 1.0


def test_penalties_apply_to_every_member(new_recorder, trial_context) -> None:
    norms = {}
    for l2 in (0.0, 0.05):
        run = new_recorder()
        run_training({"members": 2, "l2": l2, "lr": 0.01}, trial_context("ensemble", max_epochs=3), report=run)
        state = load_checkpoint(run.checkpoints[3])["model"]
        norms[l2] = [sum(v.pow(2).sum().item() for k, v in state.items()
                         if k.startswith(f"members.{m}.") and k.endswith("weight")) for m in range(2)]
    assert all(shrunk < 0.8 * plain for shrunk, plain in zip(norms[0.05], norms[0.0]))


def test_every_family_can_be_a_base() -> None:
    assert set(BASES) == set(FAMILIES)
    for name, family in FAMILIES.items():  # each keeps `features` and `classifier`, for transfer learning
        shape = {"cnn": (1, 8, 8), "mlp": (13,), "rnn": (12,)}[name]
        model = family.module(family.config(), shape, 3)
        assert isinstance(model.features, nn.Module) and isinstance(model.classifier, nn.Linear)
