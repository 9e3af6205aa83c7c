"""The loop on a GPU: skipped where CUDA is absent (CI), run on a GPU machine."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from trainables import evaluate_checkpoint, load_dataset, load_model, run_training
from trainables.checkpoint import load_checkpoint
from trainables.knobs import parse_knobs
from trainables.loop import Learner, Split, evaluate, train_epoch
from trainables.models import build_model
from trainables.optim import make_optimizer, new_scaler

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

KNOBS = {"optimizer": "sgd", "lr": 0.05, "dropout": 0.3, "batch_norm": True, "lr_schedule": "cosine",
         "batch_size": 32}


def test_cnn_trains_on_cuda_and_its_checkpoint_loads_on_the_cpu(recorder, trial_context) -> None:
    run_training({"lr": 3e-3, "epochs": 5}, trial_context("cnn", "digits", max_epochs=5), report=recorder,
                 device="cuda")
    assert recorder.last["val_accuracy"] > 0.9
    model = load_model(recorder.checkpoints[5])
    assert next(model.parameters()).device.type == "cpu"
    val = evaluate_checkpoint(recorder.checkpoints[5], split="val")
    assert val["val_accuracy"] == pytest.approx(recorder.last["val_accuracy"], abs=2 / 360)


def test_resume_on_cuda_is_exact(new_recorder, trial_context) -> None:
    context = trial_context("mlp", "digits", max_epochs=4)
    whole, crashed, resumed = new_recorder(), new_recorder(stop_after=2), new_recorder()
    run_training(KNOBS, context, report=whole, device="cuda")
    with pytest.raises(KeyboardInterrupt):
        run_training(KNOBS, context, report=crashed, device="cuda")
    run_training(KNOBS, context, report=resumed, start_checkpoint=crashed.checkpoints[2], device="cuda")
    strip = lambda reports: [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]
    assert strip(crashed.reports + resumed.reports) == strip(whole.reports)
    final, again = load_checkpoint(whole.checkpoints[4]), load_checkpoint(resumed.checkpoints[4])
    assert all(torch.equal(t, again["model"][k]) for k, t in final["model"].items())


def test_a_cpu_checkpoint_resumes_on_cuda(new_recorder, trial_context) -> None:
    context = trial_context("cnn", "digits", max_epochs=3)
    crashed, resumed = new_recorder(stop_after=1), new_recorder()
    with pytest.raises(KeyboardInterrupt):
        run_training(KNOBS, context, report=crashed)
    run_training(KNOBS, context, report=resumed, start_checkpoint=crashed.checkpoints[1], device="cuda")
    assert [r["epoch"] for r in resumed.reports] == [2, 3] and not resumed.last["diverged"]


@pytest.fixture
def text_csv(tmp_path):
    """A small text set as a user's .csv (no data package needed): the label is which of two words occurs."""
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    rows = []
    for i in range(600):
        tokens = list(rng.choice(words, rng.integers(3, 15)))
        tokens[rng.integers(len(tokens))] = "good" if i % 2 else "bad"
        rows.append((" ".join(tokens), "pos" if i % 2 else "neg"))
    path = tmp_path / "text.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return {"path": str(path), "text_column": "text", "label_column": "label"}


RNN_KNOBS = {"vocab_size": 100, "max_len": 16, "embedding_dim": 16, "hidden_size": 16, "lr": 0.01}


def test_an_rnn_learns_on_cuda_and_its_export_scores_on_the_cpu(recorder, trial_context, text_csv) -> None:
    knobs = {**RNN_KNOBS, "bidirectional": True, "augment": 1.0, "epochs": 8}
    run_training(knobs, trial_context("rnn", text_csv, max_epochs=8), report=recorder, device="cuda")
    assert recorder.last["val_accuracy"] > 0.9
    val = evaluate_checkpoint(recorder.checkpoints[8], split="val")
    assert val["val_accuracy"] == pytest.approx(recorder.last["val_accuracy"], abs=2 / 120)


@pytest.mark.parametrize("trainable, data, knobs", [
    ("ensemble", "wine", {"method": "boosting", "members": 3}),
    ("mlp", {"name": "wine", "folds": 3}, {"augment": 1.0}),
])
def test_ensembles_and_folds_resume_exactly_on_cuda(trainable, data, knobs, new_recorder, trial_context) -> None:
    context = trial_context(trainable, data, max_epochs=4)
    whole, crashed, resumed = new_recorder(), new_recorder(stop_after=2), new_recorder()
    run_training({**KNOBS, **knobs}, context, report=whole, device="cuda")
    with pytest.raises(KeyboardInterrupt):
        run_training({**KNOBS, **knobs}, context, report=crashed, device="cuda")
    run_training({**KNOBS, **knobs}, context, report=resumed, start_checkpoint=crashed.checkpoints[2], device="cuda")
    strip = lambda reports: [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]
    assert strip(crashed.reports + resumed.reports) == strip(whole.reports)


def count_syncs(run) -> int:
    """Host-device synchronisations during `run()`, as CUDA's sync debug mode warns of them."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


@pytest.mark.parametrize("trainable, data, knobs", [
    ("mlp", "digits", {}),
    ("mlp", "digits", {"amp": False}),
    ("cnn", "digits", {"augment": 1.0, "batch_norm": True, "grad_clip": 1.0, "l2": 1e-4}),
    ("rnn", "text", {**RNN_KNOBS, "augment": 1.0, "num_layers": 2, "bidirectional": True}),
    ("ensemble", "wine", {"method": "boosting", "members": 2, "optimizer": "sgd"}),
])
def test_training_makes_no_host_sync_per_batch(trainable, data, knobs, new_recorder, trial_context, text_csv) -> None:
    """An epoch of 8x as many batches waits for the GPU no more often: syncs happen per epoch, not per batch.
    Mixed precision is on by default here: the fused adam and sgd let the GradScaler skip an overflowed
    step without the host reading its flag (rmsprop, which has no fused form, would sync every step)."""
    context = trial_context(trainable, text_csv if data == "text" else data, max_epochs=1)
    counts = [count_syncs(lambda size=size: run_training({**knobs, "batch_size": size}, context,
                                                         report=new_recorder(), device="cuda"))
              for size in (128, 16)]
    assert counts[0] == counts[1], counts


def test_amp_is_on_by_default_on_cuda_and_a_resume_with_its_scaler_is_exact(new_recorder, trial_context) -> None:
    knobs = {**KNOBS, "optimizer": "adam", "lr": 3e-3, "grad_clip": 1.0}
    context = trial_context("cnn", "digits", max_epochs=4)
    whole, crashed, resumed = new_recorder(), new_recorder(stop_after=2), new_recorder()
    run_training(knobs, context, report=whole, device="cuda")
    with pytest.raises(KeyboardInterrupt):
        run_training(knobs, context, report=crashed, device="cuda")
    run_training(knobs, context, report=resumed, start_checkpoint=crashed.checkpoints[2], device="cuda")
    strip = lambda reports: [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]
    assert strip(crashed.reports + resumed.reports) == strip(whole.reports)
    assert whole.last["val_accuracy"] > 0.85
    scaler = load_checkpoint(whole.checkpoints[4])["learners"][0]["scaler"]
    assert scaler["scale"] > 0 and "_growth_tracker" in scaler  # the GradScaler's state travels with the learner
    final, again = load_checkpoint(whole.checkpoints[4]), load_checkpoint(resumed.checkpoints[4])
    assert all(torch.equal(t, again["model"][k]) for k, t in final["model"].items())


def test_amp_false_trains_in_float32_on_cuda(recorder, trial_context) -> None:
    run_training({"amp": False, "epochs": 1}, trial_context("mlp", "digits", max_epochs=1), report=recorder,
                 device="cuda")
    assert load_checkpoint(recorder.checkpoints[1])["learners"][0]["scaler"] == {}


def test_amp_trains_in_float16_and_evaluates_in_float32() -> None:
    data = load_dataset({"name": "digits"}, seed=0).to(torch.device("cuda"))
    knobs = parse_knobs("cnn", {"grad_clip": 1.0})
    torch.manual_seed(0)
    model = build_model("cnn", knobs.model, data.input_shape, data.n_classes).cuda()
    dtypes: list[torch.dtype] = []
    model.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    learner = Learner(model, make_optimizer("adam", model.parameters(), 3e-3, 0.9, fused=True), [],
                      scaler=new_scaler(torch.device("cuda"), True))
    stats = train_epoch(learner, Split(data.x_train, data.y_train), knobs.training, torch.Generator().manual_seed(0))
    assert set(dtypes) == {torch.float16} and np.isfinite(stats.loss)
    dtypes.clear()
    evaluate(model, data.x_val, data.y_val)
    assert set(dtypes) == {torch.float32}


def test_a_pruned_cnn_on_cuda_reports_its_cpu_costs_and_int8_copy_and_resumes_exactly(new_recorder,
                                                                                     trial_context) -> None:
    knobs = {"lr": 3e-3, "prune": 0.5, "batch_norm": True}  # mixed precision, fused adam: on by default here
    context = trial_context("cnn", "digits", max_epochs=4, quantize=True)
    whole, crashed, resumed = new_recorder(), new_recorder(stop_after=3), new_recorder()
    run_training(knobs, context, report=whole, device="cuda")
    assert [r["pruned"] for r in whole.reports] == [False, False, False, True]
    assert whole.last["params"] < 0.6 * whole.reports[0]["params"] and whole.last["latency_ms"] > 0
    assert abs(whole.last["int8_val_accuracy"] - whole.last["val_accuracy"]) <= 0.05
    with pytest.raises(KeyboardInterrupt):
        run_training(knobs, context, report=crashed, device="cuda")
    run_training(knobs, context, report=resumed, start_checkpoint=crashed.checkpoints[3], device="cuda")
    strip = lambda reports: [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]
    assert strip(crashed.reports + resumed.reports) == strip(whole.reports)
