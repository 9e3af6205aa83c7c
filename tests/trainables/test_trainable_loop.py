from __future__ import annotations

import math

import pytest
import torch

from trainables import KNOB_CHOICES, METRIC_KEYS, load_dataset, run_training
from trainables.catalog import TABULAR_METRICS
from trainables.checkpoint import load_checkpoint
from trainables.knobs import parse_knobs
from trainables.loop import Learner, Split, train_epoch
from trainables.models import build_model
from trainables.optim import (
    load_optimizer_state,
    lr_factor,
    make_optimizer,
    new_scaler,
    penalised_weights,
    weight_penalty,
)


def finite_report(report: dict) -> bool:
    return all(math.isfinite(report[k]) for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"))


@pytest.mark.parametrize("knob, value", [(k, v) for k, values in KNOB_CHOICES.items() for v in values])
def test_every_choice_builds_and_trains(knob: str, value: str, recorder, trial_context, small_text) -> None:
    text, rnn = small_text
    base = value if knob == "base" else "rnn" if knob == "cell" else "mlp"
    data, knobs = {"cnn": ("digits", {}), "mlp": ("wine", {}), "rnn": (text, rnn)}[base]
    trainable = "ensemble" if knob in ("method", "base") else base
    if trainable == "ensemble":
        knobs = {**knobs, "members": 2}
    run_training({knob: value, "lr": 0.01, **knobs}, trial_context(trainable, data, max_epochs=1), report=recorder)
    assert len(recorder.reports) == 1 and finite_report(recorder.last)
    assert not recorder.last["diverged"]


def test_reports_every_metric_each_epoch(recorder, trial_context) -> None:
    run_training({"epochs": 3}, trial_context(max_epochs=5, checkpoint_every=2), report=recorder)
    assert [r["epoch"] for r in recorder.reports] == [1, 2, 3]
    for report in recorder.reports:
        assert set(report) == {*METRIC_KEYS, *TABULAR_METRICS}  # wine is tabular: n_features too
        assert report["planned_epochs"] == 3 and report["samples_per_s"] > 0
        assert report["generalization_gap"] == pytest.approx(report["train_accuracy"] - report["val_accuracy"])
    assert sorted(recorder.checkpoints) == [2, 3]  # every 2nd epoch, and the last


def test_same_seed_same_run(new_recorder, trial_context) -> None:
    runs = [new_recorder() for _ in range(2)]
    for run in runs:
        run_training({"dropout": 0.3}, trial_context(seed=7), report=run)
    strip = lambda reports: [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]
    assert strip(runs[0].reports) == strip(runs[1].reports)


def test_lr_schedules() -> None:
    assert [lr_factor("none", e, 4) for e in range(4)] == [1.0] * 4
    cosine = [lr_factor("cosine", e, 4) for e in range(4)]
    assert cosine[0] == 1.0 and all(a > b > 0 for a, b in zip(cosine, cosine[1:]))
    assert [lr_factor("step", e, 6) for e in range(6)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


def test_penalties_cover_weights_only_and_add_up() -> None:
    model = build_model("mlp", {"batch_norm": True}, (13,), 3)
    weights = penalised_weights(model)
    assert all(w.ndim == 2 for w in weights) and len(weights) == 3  # two hidden layers + classifier
    l1 = sum(w.abs().sum() for w in weights)
    l2 = sum(w.pow(2).sum() for w in weights)
    assert weight_penalty(weights, 0.0, 0.0) is None
    assert weight_penalty(weights, 0.1, 0.0).item() == pytest.approx(0.1 * l1.item(), rel=1e-5)
    assert weight_penalty(weights, 0.1, 0.2).item() == pytest.approx((0.1 * l1 + 0.2 * l2).item(), rel=1e-5)


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_penalties_shrink_the_trained_weights(penalty: str, new_recorder, trial_context) -> None:
    norms = {}
    for strength in (0.0, 0.05):
        run = new_recorder()
        run_training({penalty: strength, "lr": 0.01}, trial_context(max_epochs=3), report=run)
        state = load_checkpoint(run.checkpoints[3])["model"]
        norms[strength] = sum(v.abs().sum().item() for k, v in state.items() if k.endswith("weight"))
    assert norms[0.05] < 0.8 * norms[0.0]


def test_grad_clip_bounds_the_gradient_norm() -> None:
    data = load_dataset({"name": "wine"}, seed=0)

    def gradient_norms(clip: float) -> list[float]:
        knobs = parse_knobs("mlp", {"grad_clip": clip, "batch_size": 16})
        torch.manual_seed(0)
        model = build_model("mlp", knobs.model, data.input_shape, data.n_classes)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        norms: list[float] = []
        optimizer.register_step_pre_hook(lambda *_: norms.append(
            torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()])).item()))
        train_epoch(Learner(model, optimizer, []), Split(data.x_train, data.y_train), knobs.training,
                    torch.Generator())
        return norms

    assert max(gradient_norms(0.0)) > 0.05
    assert max(gradient_norms(0.05)) <= 0.05 + 1e-5


def test_a_huge_learning_rate_diverges_without_raising(recorder, trial_context) -> None:
    run_training({"lr": 1e6, "optimizer": "sgd"}, trial_context(max_epochs=10), report=recorder)
    assert recorder.last["diverged"] is True and len(recorder.reports) < 10
    assert not any(r["diverged"] for r in recorder.reports[:-1])
    assert recorder.last["epoch"] not in recorder.checkpoints


def test_early_stopping_ends_the_trial(recorder, trial_context) -> None:
    # a learning rate this small leaves val_accuracy flat: no improvement after epoch 1
    run_training({"lr": 1e-12, "early_stopping_patience": 2}, trial_context(max_epochs=10), report=recorder)
    assert [r["epoch"] for r in recorder.reports] == [1, 2, 3]
    assert recorder.last["early_stopped"] is True and 3 in recorder.checkpoints
    assert load_checkpoint(recorder.checkpoints[3])["best"]["epoch"] == 1


def test_cnn_learns_digits(recorder, trial_context) -> None:
    run_training({"lr": 3e-3, "epochs": 5}, trial_context("cnn", "digits", max_epochs=5), report=recorder)
    assert recorder.last["val_accuracy"] > 0.9


def test_metric_must_be_one_the_builtins_report(recorder, trial_context) -> None:
    with pytest.raises(ValueError, match="metric"):
        run_training({}, trial_context(metric="test_accuracy"), report=recorder)


def test_amp_has_no_effect_on_the_cpu(new_recorder, trial_context) -> None:
    default, asked = new_recorder(), new_recorder()
    run_training({}, trial_context(), report=default)
    run_training({"amp": True}, trial_context(), report=asked)
    strip = lambda reports: [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]
    assert strip(asked.reports) == strip(default.reports)
    assert load_checkpoint(asked.checkpoints[2])["learners"][0]["scaler"] == {}


def test_the_mixed_precision_step_runs_with_a_fused_optimizer_that_loaded_a_plain_one() -> None:
    """What `amp` does on CUDA, run on the CPU (which has float16 autocast, a GradScaler and fused SGD): a
    CPU checkpoint resumed on CUDA hands a fused optimizer a non-fused state, whose `fused: None` would
    make the scaler's step fail; `load_optimizer_state` keeps the optimizer as it was built."""
    data = load_dataset({"name": "wine"}, seed=0)
    knobs = parse_knobs("mlp", {"grad_clip": 1.0, "batch_size": 16, "optimizer": "sgd", "lr": 0.05})
    torch.manual_seed(0)
    model = build_model("mlp", knobs.model, data.input_shape, data.n_classes)
    optimizer = make_optimizer("sgd", model.parameters(), 0.05, 0.9, fused=True)
    load_optimizer_state(optimizer, make_optimizer("sgd", model.parameters(), 0.05, 0.9).state_dict())
    assert optimizer.param_groups[0]["fused"] is True
    scaler = new_scaler(torch.device("cpu"), True)
    before = [p.detach().clone() for p in model.parameters()]
    stats = train_epoch(Learner(model, optimizer, [], scaler=scaler), Split(data.x_train, data.y_train),
                        knobs.training, torch.Generator().manual_seed(0))
    assert math.isfinite(stats.loss) and scaler.state_dict()["scale"] > 0
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
