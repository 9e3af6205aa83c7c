"""The `prune` knob: magnitude pruning before the last quarter of a trial, permanent in what it saves."""
from __future__ import annotations

import pytest
import torch

from trainables import export_best, run_training
from trainables.checkpoint import MODEL_FILE, load_checkpoint
from trainables.configs import TrainingConfig
from trainables.models import build_model
from trainables.pruning import PruneSchedule, fine_tune_epochs, prunable_weights


def without_timings(reports: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]


def test_the_knob_is_a_fraction_up_to_095() -> None:
    assert TrainingConfig(prune=0.95).prune == 0.95
    for bad in (-0.1, 0.96, 1.0):
        with pytest.raises(ValueError, match=r"prune.*must be in \[0, 0.95\]"):
            TrainingConfig(prune=bad)


def test_the_schedule_prunes_before_the_last_quarter() -> None:
    assert [fine_tune_epochs(n) for n in (1, 2, 4, 5, 8, 9)] == [1, 1, 1, 2, 2, 3]
    assert PruneSchedule.planned(0.0, 8) is None
    assert PruneSchedule.planned(0.5, 1) == PruneSchedule(0.5, 1, 1)
    assert PruneSchedule.planned(0.5, 8) == PruneSchedule(0.5, 7, 8)
    assert PruneSchedule.planned(0.5, 8).brought_forward(3) == PruneSchedule(0.5, 4, 5)
    # a resumed trial, extended from 8 to 12 epochs: not pruned yet, pruned, brought forward
    assert PruneSchedule.resumed(0.5, 12, {"start": 7, "last": 8}, 6, 8) == PruneSchedule(0.5, 10, 12)
    assert PruneSchedule.resumed(0.5, 12, {"start": 7, "last": 8}, 8, 8) == PruneSchedule(0.5, 7, 12)
    assert PruneSchedule.resumed(0.5, 12, {"start": 4, "last": 5}, 5, 8) == PruneSchedule(0.5, 4, 5)


@pytest.mark.parametrize("trainable, data, knobs", [
    ("mlp", "wine", {"batch_norm": True}),
    ("cnn", "digits", {"filters": 4, "dense_units": 16}),
    ("rnn", "text", {"cell": "gru"}),
])
def test_prune_zeroes_half_the_weights_for_the_last_epochs_and_the_export_is_plain(
        trainable: str, data: str, knobs: dict, new_recorder, trial_context, small_text, tmp_path) -> None:
    if data == "text":
        data, rnn = small_text
        knobs = {**knobs, **rnn}
    recorder = new_recorder()
    run_training({**knobs, "prune": 0.5}, trial_context(trainable, data, max_epochs=5), report=recorder)
    assert [r["pruned"] for r in recorder.reports] == [False, False, False, True, True]  # fine-tunes 2 epochs

    state = load_checkpoint(recorder.checkpoints[5])
    fresh = build_model(trainable, state["model_config"], tuple(state["input_shape"]), state["n_classes"])
    assert list(state["model"]) == list(fresh.state_dict())  # no weight_orig / weight_mask, the same order
    fresh.load_state_dict(state["model"])
    weights = [getattr(layer, name) for layer, name in prunable_weights(fresh)]
    prunable = sum(w.numel() for w in weights)
    assert sum(int((w == 0).sum()) for w in weights) == round(0.5 * prunable)
    # from epoch 1 `params` counts what the export will have: a rung compares the models trials will export
    nonzero = sum(int(p.count_nonzero()) for p in fresh.parameters())  # fresh holds the pruned weights
    assert nonzero <= sum(p.numel() for p in fresh.parameters()) - round(0.5 * prunable)
    assert [r["params"] for r in recorder.reports] == [nonzero] * 5
    assert state["prune"] == {"amount": 0.5, "start": 4, "last": 5}

    exported = torch.load(export_best(recorder.checkpoints[5], tmp_path / "best") / MODEL_FILE, weights_only=True)
    assert list(exported) == list(fresh.state_dict())
    biases = [tensor for key, tensor in exported.items() if "bias" in key]  # batch norm's too: not pruned
    assert biases and all(int((b == 0).sum()) == 0 for b in biases)


def test_a_one_epoch_trial_prunes_before_its_epoch(recorder, trial_context) -> None:
    run_training({"prune": 0.9, "units": 16}, trial_context(max_epochs=1), report=recorder)
    assert recorder.last["pruned"] is True
    dense = sum(p.numel() for p in build_model("mlp", {"units": 16}, (13,), 3).parameters())
    assert recorder.last["params"] < 0.2 * dense


def test_no_pruned_key_without_the_knob(recorder, trial_context) -> None:
    run_training({}, trial_context(), report=recorder)
    assert "pruned" not in recorder.last and load_checkpoint(recorder.checkpoints[2])["prune"] is None


@pytest.mark.parametrize("crash_after", [3, 4])  # before pruning, and after its first pruned epoch
@pytest.mark.parametrize("trainable, data, knobs", [
    ("mlp", "wine", {"optimizer": "sgd", "lr": 0.05, "dropout": 0.3, "lr_schedule": "cosine"}),
    ("ensemble", "wine", {"method": "boosting", "members": 2, "units": 8}),
    ("rnn", "text", {"augment": 1.0}),
])
def test_resume_across_the_pruning_epoch_is_exact(crash_after: int, trainable: str, data: str, knobs: dict,
                                                  new_recorder, trial_context, small_text) -> None:
    if data == "text":
        data, rnn = small_text
        knobs = {**knobs, **rnn}
    knobs = {**knobs, "prune": 0.5}
    context = trial_context(trainable, data, max_epochs=5)
    whole = new_recorder()
    run_training(knobs, context, report=whole)
    crashed = new_recorder(stop_after=crash_after)
    with pytest.raises(KeyboardInterrupt):
        run_training(knobs, context, report=crashed)
    resumed = new_recorder()
    run_training(knobs, context, report=resumed, start_checkpoint=crashed.checkpoints[crash_after])

    assert without_timings(crashed.reports + resumed.reports) == without_timings(whole.reports)
    final, again = load_checkpoint(whole.checkpoints[5]), load_checkpoint(resumed.checkpoints[5])
    for key, tensor in final["model"].items():
        assert torch.equal(tensor, again["model"][key]), key


def test_early_stopping_prunes_first_then_fine_tunes(new_recorder, trial_context) -> None:
    # a learning rate too small to move val_accuracy: patience 3 runs out after epoch 4 of 12
    knobs = {"lr": 1e-7, "optimizer": "sgd", "early_stopping_patience": 3, "prune": 0.5}
    context = trial_context(max_epochs=12, quantize=True)
    whole = new_recorder()
    run_training(knobs, context, report=whole)
    assert [r["epoch"] for r in whole.reports] == [1, 2, 3, 4, 5, 6, 7]  # prunes at 5, fine-tunes 3 epochs
    assert [r["pruned"] for r in whole.reports] == [False] * 4 + [True] * 3
    assert [r["early_stopped"] for r in whole.reports] == [False] * 6 + [True]
    assert all(("int8_val_accuracy" in r) == (r["epoch"] == 7) for r in whole.reports)  # only the last report
    assert load_checkpoint(whole.checkpoints[7])["best"]["epoch"] >= 5  # the best among the pruned epochs

    crashed = new_recorder(stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        run_training(knobs, context, report=crashed)
    resumed = new_recorder()
    run_training(knobs, context, report=resumed, start_checkpoint=crashed.checkpoints[5])
    assert without_timings(crashed.reports + resumed.reports) == without_timings(whole.reports)
    finished = new_recorder()
    run_training(knobs, context, report=finished, start_checkpoint=whole.checkpoints[7])
    assert finished.reports == []  # it ended with its fine-tuning, not at its 12 planned epochs
