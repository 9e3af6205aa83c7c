"""`export.quantize`: a trial's last report says how its int8 copy scores and what it weighs."""
from __future__ import annotations

import pytest

from trainables import export_best, run_training
from trainables.catalog import INT8_METRICS
from trainables.export import quantize_export


def test_the_last_report_scores_the_int8_copy_that_quantize_export_writes(recorder, trial_context,
                                                                          tmp_path) -> None:
    knobs = {"lr": 3e-3, "batch_norm": True}
    run_training(knobs, trial_context("cnn", "digits", max_epochs=3, quantize=True), report=recorder)
    assert [set(INT8_METRICS) <= set(r) for r in recorder.reports] == [False, False, True]
    last = recorder.last
    assert abs(last["int8_val_accuracy"] - last["val_accuracy"]) <= 0.05
    assert last["int8_bytes"] < 0.4 * last["model_bytes"]  # convolutions included

    result = quantize_export(export_best(recorder.checkpoints[3], tmp_path / "best"), split="val")
    assert last["int8_val_accuracy"] == result["accuracy_after"]
    assert last["int8_bytes"] == pytest.approx(result["size_bytes_after"], rel=0.05)  # but for the archive's name


def test_k_folds_score_each_folds_int8_copy_on_its_own_val_rows(recorder, trial_context) -> None:
    run_training({}, trial_context("mlp", {"name": "wine", "folds": 3}, max_epochs=2, quantize=True),
                 report=recorder)
    last = recorder.last
    assert abs(last["int8_val_accuracy"] - last["val_accuracy"]) <= 0.1
    assert last["int8_bytes"] < 0.5 * last["model_bytes"]


def test_no_int8_metrics_without_the_setting(recorder, trial_context) -> None:
    run_training({}, trial_context(), report=recorder)
    assert not set(INT8_METRICS) & set(recorder.last)
