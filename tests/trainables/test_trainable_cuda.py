"""The loop on a GPU: skipped where CUDA is absent (CI), run on a GPU machine."""
from __future__ import annotations

import pytest
import torch

from trainables import evaluate_checkpoint, load_model, run_training
from trainables.checkpoint import load_checkpoint

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
    strip = lambda reports: [{k: v for k, v in r.items() if k != "samples_per_s"} for r in reports]
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
