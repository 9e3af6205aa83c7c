"""Cost metrics: every report of every built-in says what its exported predictor costs."""
from __future__ import annotations

import pytest
import torch

from trainables import export_best, run_training
from trainables.catalog import COST_METRICS
from trainables.checkpoint import MODEL_FILE, load_checkpoint
from trainables.cost import latency_ms, nonzero_params
from trainables.models import build_model


@pytest.mark.parametrize("trainable, data, knobs", [
    ("mlp", "wine", {}),
    ("cnn", "digits", {"filters": 4, "dense_units": 16}),
    ("rnn", "text", {}),
    ("ensemble", {"name": "wine", "folds": 2}, {"members": 2, "units": 8}),
])
def test_every_report_carries_the_exported_predictors_costs(trainable: str, data: str | dict, knobs: dict,
                                                             new_recorder, trial_context, small_text,
                                                             tmp_path) -> None:
    if data == "text":
        data, rnn = small_text
        knobs = {**knobs, **rnn}
    recorder = new_recorder()
    run_training(knobs, trial_context(trainable, data, max_epochs=2), report=recorder)
    assert all(set(COST_METRICS) <= set(report) for report in recorder.reports)
    first, last = recorder.reports
    assert first["latency_ms"] == last["latency_ms"] > 0  # measured once: the architecture does not change
    assert first["model_bytes"] == last["model_bytes"]

    state = load_checkpoint(recorder.checkpoints[2])
    model = build_model(trainable, state["model_config"], tuple(state["input_shape"]), state["n_classes"])
    model.load_state_dict(state["model"])
    # every parameter but the rnn's embedding of <pad>, which stays zero
    padding = knobs.get("embedding_dim", 0)
    assert last["params"] == sum(p.numel() for p in model.parameters()) - padding == nonzero_params(model)
    exported = export_best(recorder.checkpoints[2], tmp_path / "best") / MODEL_FILE
    # the same bytes but for the zip archive's name, which torch takes from the file name: it heads each
    # record (one a tensor, and a few more) twice
    records = len(state["model"]) + 8
    assert abs(last["model_bytes"] - exported.stat().st_size) <= 2 * 32 * records


def test_latency_is_timed_at_batch_size_one_on_one_thread_and_leaves_the_model_as_it_was(small_text) -> None:
    _, rnn = small_text
    model = build_model("rnn", {k: v for k, v in rnn.items()}, (rnn["max_len"],), 2).train()
    x = torch.randint(1, rnn["vocab_size"], (50, rnn["max_len"]))
    lengths = torch.randint(1, rnn["max_len"] + 1, (50,)).sort(descending=True).values
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append((inputs[0].shape[0], torch.get_num_threads(),
                                                                         module.training)))
    torch.set_num_threads(2)
    try:
        assert latency_ms(model, x, lengths, calls=10, warmup=2) > 0
        assert torch.get_num_threads() == 2 and model.training
    finally:
        torch.set_num_threads(1)  # the tests' own setting (conftest)
    assert seen == [(1, 1, False)] * 12


def test_zeros_do_not_count_as_parameters() -> None:
    model = build_model("mlp", {"units": 8, "hidden_layers": 1}, (13,), 3)
    total = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        model.classifier.weight[:2] = 0
    assert nonzero_params(model) == total - 2 * 8
