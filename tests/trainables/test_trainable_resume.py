from __future__ import annotations

import pytest
import torch

from trainables import run_training
from trainables.checkpoint import CHECKPOINT_FILE, RECORD_KEYS, load_checkpoint

# dropout, batch norm, momentum and a schedule: every piece of state a resume has to carry
KNOBS = {"optimizer": "sgd", "lr": 0.05, "dropout": 0.3, "batch_norm": True, "lr_schedule": "cosine",
         "batch_size": 32}


def without_speed(reports: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("samples_per_s", "latency_ms")} for r in reports]


@pytest.mark.parametrize("trainable, data, extra", [
    ("mlp", "wine", {}),
    ("cnn", "digits", {}),
    ("mlp", "wine", {"augment": 1.0}),
    ("ensemble", "wine", {"method": "boosting", "members": 3, "sample_fraction": 0.8}),
    ("ensemble", "wine", {"method": "bagging", "members": 2}),
    ("mlp", {"name": "wine", "folds": 3}, {}),
    ("ensemble", {"name": "digits", "folds": 2}, {"method": "boosting", "members": 2, "base": "cnn", "filters": 4}),
    ("rnn", "text", {"augment": 2.0}),
])
def test_resume_continues_exactly_where_it_stopped(trainable: str, data: str | dict, extra: dict, new_recorder,
                                                   trial_context, small_text) -> None:
    knobs = {**KNOBS, **extra}
    if data == "text":
        data, rnn = small_text
        knobs.update(rnn)
    context = trial_context(trainable, data, max_epochs=4)
    whole = new_recorder()
    run_training(knobs, context, report=whole)

    crashed = new_recorder(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_training(knobs, context, report=crashed)
    resumed = new_recorder()
    run_training(knobs, context, report=resumed, start_checkpoint=crashed.checkpoints[2])

    assert [r["epoch"] for r in resumed.reports] == [3, 4]
    assert without_speed(crashed.reports + resumed.reports) == without_speed(whole.reports)
    final, again = load_checkpoint(whole.checkpoints[4]), load_checkpoint(resumed.checkpoints[4])
    for key, tensor in final["model"].items():
        assert torch.equal(tensor, again["model"][key]), key


def test_checkpoint_layout(recorder, trial_context) -> None:
    run_training({"epochs": 2, "units": 16}, trial_context(max_epochs=5, seed=3), report=recorder)
    folder = recorder.checkpoints[2]
    assert [p.name for p in folder.iterdir()] == [CHECKPOINT_FILE]
    state = load_checkpoint(folder)
    assert set(RECORD_KEYS) <= set(state)
    assert state["trainable"] == "mlp" and state["seed"] == 3 and state["n_classes"] == 3
    assert state["input_shape"] == [13] and state["data"]["name"] == "wine"
    assert state["knobs"]["units"] == 16 and state["model_config"]["units"] == 16
    assert state["epoch"] == 2 and state["planned_epochs"] == 2 and state["metrics"] == recorder.last
    assert state["best"]["metric"] == "val_accuracy" and state["best"]["value"] is not None
    assert {"model", "learners", "scheduler", "rng"} <= set(state)
    assert [set(learner) for learner in state["learners"]] == [{"optimizer", "sample_weight", "scaler"}]
    assert state["learners"][0]["sample_weight"] is None and state["data_options"] == {}
    assert state["learners"][0]["scaler"] == {}  # no mixed precision on the CPU
    assert set(state["rng"]) == {"torch", "cuda", "shuffle", "augment"}


def test_a_version_1_checkpoint_still_loads(recorder, new_recorder, trial_context) -> None:
    run_training({}, trial_context(max_epochs=3), report=recorder)
    state = torch.load(recorder.checkpoints[2] / CHECKPOINT_FILE, weights_only=True)
    old = {key: value for key, value in state.items() if key not in ("learners", "data_options")}
    old.update(format=1, optimizer=state["learners"][0]["optimizer"])
    old["rng"] = {key: value for key, value in state["rng"].items() if key != "augment"}
    # knobs added to the mlp since (feature selection): absent from an old record, they count as their defaults
    old["model_config"] = {k: v for k, v in state["model_config"].items() if k not in ("select_features", "pca")}
    torch.save(old, recorder.checkpoints[2] / CHECKPOINT_FILE)
    resumed = new_recorder()
    run_training({}, trial_context(max_epochs=3), report=resumed, start_checkpoint=recorder.checkpoints[2])
    assert [r["epoch"] for r in resumed.reports] == [3]
    assert without_speed(resumed.reports) == without_speed(recorder.reports[2:])


def test_resuming_a_finished_trial_reports_nothing(recorder, new_recorder, trial_context) -> None:
    run_training({}, trial_context(), report=recorder)
    again = new_recorder()
    run_training({}, trial_context(), report=again, start_checkpoint=recorder.checkpoints[2])
    assert again.reports == []


def test_a_checkpoint_of_another_model_is_refused(recorder, new_recorder, trial_context) -> None:
    run_training({"units": 16}, trial_context(), report=recorder)
    with pytest.raises(ValueError, match="holds a different model"):
        run_training({"units": 32}, trial_context(max_epochs=3), report=new_recorder(),
                     start_checkpoint=recorder.checkpoints[2])
