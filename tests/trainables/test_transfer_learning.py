"""Transfer learning: finding the source, loading what fits, freezing the features, and that it pays off."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trainables import TrialContext, evaluate_checkpoint, export_best, load_dataset, run_training
from trainables.loop import evaluate
from trainables.models import build_model
from trainables.transfer import (
    apply_init_from,
    freeze_features,
    keep_frozen_in_eval,
    resolve_source,
    trainable_parameters,
)

FIRST_HALF = [0, 1, 2, 3, 4]
SECOND_HALF = [5, 6, 7, 8, 9]
EXPERIMENT = "digits-0to4"


def _train(tmp: Path, classes: list[int], config: dict[str, Any], epochs: int) -> Path:
    """Train a digits cnn with `run_training` and keep a copy of its last checkpoint folder."""
    kept: dict[str, Path] = {}

    def report(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        if checkpoint_dir is not None:
            target = tmp / f"epoch-{metrics['epoch']}"
            shutil.copytree(checkpoint_dir, target)
            kept["last"] = target

    context = TrialContext(trainable="cnn", data={"name": "digits", "classes": classes}, max_epochs=epochs,
                           checkpoint_every=epochs)
    run_training(config, context, report=report)
    return kept["last"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict[str, Path]:
    """A 0-4 digits cnn: its checkpoint folder, and an experiment laid out as tunerd writes it."""
    root = tmp_path_factory.mktemp("transfer")
    checkpoint = _train(root / "trial", FIRST_HALF, {"lr": 3e-3}, epochs=10)
    storage = root / "results"
    export_best(checkpoint, storage / EXPERIMENT / "best")
    return {"checkpoint": checkpoint, "storage": storage, "best": storage / EXPERIMENT / "best"}


def _digits_cnn(n_classes: int, **config: Any) -> nn.Module:
    torch.manual_seed(0)
    return build_model("cnn", config, (1, 8, 8), n_classes)


def _assert_head_skipped(model: nn.Module, report: dict[str, list[str]], source_weights: dict) -> None:
    feature_names = [name for name in model.state_dict() if name.startswith("features.")]
    assert feature_names and sorted(report["loaded"]) == sorted(feature_names)
    assert report["skipped"] == ["classifier.weight: shape [10, 128] in the model vs [5, 128] in the source",
                                 "classifier.bias: shape [10] in the model vs [5] in the source"]
    for name in feature_names:
        assert torch.equal(model.state_dict()[name], source_weights[name])


def test_a_five_class_cnn_starts_a_ten_class_one_except_its_head(source) -> None:
    weights = torch.load(source["best"] / "model.pt", weights_only=True)
    model = _digits_cnn(10)
    head_before = model.classifier.weight.clone()
    report = apply_init_from(model, str(source["best"]), storage=None)
    _assert_head_skipped(model, report, weights)
    assert torch.equal(model.classifier.weight, head_before)


@pytest.mark.parametrize("how", ["experiment", "export folder", "checkpoint folder", "checkpoint.pt",
                                 "model.pt", "relative path", "bare folder name"])
def test_every_kind_of_source_is_found(source, how, monkeypatch) -> None:
    best, checkpoint, storage = source["best"], source["checkpoint"], str(source["storage"])
    cwd, value, expected = {
        "experiment": (source["storage"], EXPERIMENT, best),  # wins over the same-named folder here
        "export folder": (best, str(best), best),
        "checkpoint folder": (best, str(checkpoint), checkpoint),
        "checkpoint.pt": (best, str(checkpoint / "checkpoint.pt"), checkpoint / "checkpoint.pt"),
        "model.pt": (best, str(best / "model.pt"), best / "model.pt"),
        "relative path": (source["storage"], f"{EXPERIMENT}/best", best),
        "bare folder name": (best.parent, "best", best),  # no such experiment, but a folder here
    }[how]
    monkeypatch.chdir(cwd)
    assert resolve_source(value, storage=storage) == expected
    weights = torch.load(best / "model.pt", weights_only=True)
    model = _digits_cnn(10)
    _assert_head_skipped(model, apply_init_from(model, value, storage=storage), weights)


def test_bad_sources_say_what_was_looked_for_and_where(source, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = str(source["storage"])
    with pytest.raises(ValueError, match=r"'nope' is not an experiment name .*no storage folder was given.*"
                                         r"no file or folder 'nope' in the current folder"):
        resolve_source("nope", storage=None)
    with pytest.raises(ValueError, match=rf"no experiment 'digits-0to3' in storage {source['storage']} "
                                         rf"\(looked for .*digits-0to3/best\) \(did you mean 'digits-0to4'\?\)"):
        resolve_source("digits-0to3", storage=storage)
    (source["storage"] / "unfinished").mkdir(exist_ok=True)
    with pytest.raises(ValueError, match=r"experiment 'unfinished' .* has no best/ folder yet"):
        resolve_source("unfinished", storage=storage)
    with pytest.raises(ValueError, match=r"no such file or folder .*missing"):
        resolve_source("./missing", storage=storage)
    with pytest.raises(ValueError, match=r"no such file or folder .*weights\.pt"):
        resolve_source("weights.pt", storage=storage)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"folder .*empty holds no model \(looked for model\.pt with model\.json, "
                                         r"an export, or checkpoint\.pt, a checkpoint\)"):
        resolve_source("empty", storage=None)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt is a file but not a \.pt weights file"):
        resolve_source("./notes.txt", storage=None)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ValueError, match="cannot look up experiment 'anything' in storage s3://bucket/results"):
        resolve_source("anything", storage="s3://bucket/results")
    with pytest.raises(ValueError, match="must be an experiment name or a path"):
        resolve_source("", storage=storage)


def test_sources_that_hold_no_usable_weights(source, tmp_path) -> None:
    model = _digits_cnn(10)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt holds no state_dict"):
        apply_init_from(model, str(tmp_path / "list.pt"), storage=None)
    torch.save({"model": nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # a whole module: not weights_only-safe
    with pytest.raises(ValueError, match=r"pickled\.pt is not a weights file torch can load safely"):
        apply_init_from(model, str(tmp_path / "pickled.pt"), storage=None)
    torch.save({"format": 1, "quantized": "qint8", "state_dict": {}}, tmp_path / "model_int8.pt")
    with pytest.raises(ValueError, match=r"is an int8 export; start from the float model\.pt"):
        apply_init_from(model, str(tmp_path / "model_int8.pt"), storage=None)
    # a wine mlp has nothing a digits cnn can use: almost certainly the wrong source
    torch.save(build_model("mlp", {}, (13,), 3).state_dict(), tmp_path / "wine.pt")
    with pytest.raises(ValueError, match=r"no parameter of this CNN matches the source by name and shape "
                                         r"\(the model has features\.0\.weight \[32, 1, 3, 3\].*; the source has "
                                         r"features\.1\.weight \[128, 13\].*is it the right source\?"):
        apply_init_from(model, str(tmp_path / "wine.pt"), storage=None)


def test_frozen_features_keep_their_weights_and_statistics_while_the_head_trains() -> None:
    model = _digits_cnn(10, batch_norm=True, dropout=0.2)
    freeze_features(model)
    assert all(not p.requires_grad for p in model.features.parameters())
    assert trainable_parameters(model) == [model.classifier.weight, model.classifier.bias]
    features_before = {k: v.clone() for k, v in model.features.state_dict().items()}
    head_before = model.classifier.weight.clone()
    optimizer = torch.optim.SGD(trainable_parameters(model), lr=0.1)
    data = load_dataset({"name": "digits"}, 0)
    model.train()
    keep_frozen_in_eval(model)
    norms = [m for m in model.features.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]
    assert norms and not any(m.training for m in norms) and model.classifier.training
    dropout = [m for m in model.features.modules() if isinstance(m, nn.Dropout)]
    assert dropout and all(m.training for m in dropout)  # still regularises the head
    for _ in range(3):
        loss = F.cross_entropy(model(data.x_train[:64]), data.y_train[:64])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, tensor in model.features.state_dict().items():  # weights, and batch-norm running statistics
        assert torch.equal(tensor, features_before[name]), name
    assert not torch.equal(model.classifier.weight, head_before)


def test_keep_frozen_in_eval_leaves_a_model_that_is_not_frozen_alone() -> None:
    model = _digits_cnn(10, batch_norm=True)
    model.train()
    keep_frozen_in_eval(model)
    assert all(m.training for m in model.modules())


def test_freeze_features_needs_features_and_something_left_to_train() -> None:
    with pytest.raises(ValueError, match=r"freeze_features: Linear has no `features` part to freeze"):
        freeze_features(nn.Linear(3, 2))

    class OnlyFeatures(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Linear(3, 2)

    with pytest.raises(ValueError, match="nothing left to train"):
        freeze_features(OnlyFeatures())


def test_every_member_of_a_combined_model_is_frozen() -> None:
    class Members(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = nn.ModuleList([_digits_cnn(3), _digits_cnn(3)])

    model = Members()
    freeze_features(model)
    for member in model.members:
        assert not any(p.requires_grad for p in member.features.parameters())
        assert all(p.requires_grad for p in member.classifier.parameters())


# --- it pays off: fine-tuning a 0-4 cnn on 50 images of 5-9 beats training the same cnn from scratch ---

SAMPLE = 50
EPOCHS = 10
SEEDS = (0, 1, 2)


def _fit_on_sample(init_from: str | None, seed: int) -> float:
    """Train a digits 5-9 cnn on a seeded sample of `SAMPLE` training images; its test accuracy."""
    spec = {"name": "digits", "classes": SECOND_HALF}
    data = load_dataset(spec, 0)
    torch.manual_seed(seed)
    model = build_model("cnn", {}, data.input_shape, data.n_classes)
    if init_from is not None:
        report = apply_init_from(model, init_from, storage=None, data=spec)
        assert [name.split(":")[0] for name in report["skipped"]] == ["classifier.weight", "classifier.bias"]
    optimizer = torch.optim.Adam(trainable_parameters(model), lr=1e-3)
    order = torch.Generator().manual_seed(seed)
    sample = torch.randperm(len(data.y_train), generator=order)[:SAMPLE]
    x, y = data.x_train[sample], data.y_train[sample]
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.randperm(SAMPLE, generator=order).split(16):
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return evaluate(model, data.x_test, data.y_test)[1]


def test_fine_tuning_a_pretrained_cnn_beats_training_from_scratch_on_a_small_sample(source) -> None:
    fine_tuned = [_fit_on_sample(str(source["best"]), seed) for seed in SEEDS]
    scratch = [_fit_on_sample(None, seed) for seed in SEEDS]
    mean_fine_tuned, mean_scratch = sum(fine_tuned) / len(SEEDS), sum(scratch) / len(SEEDS)
    print(f"fine-tuned {fine_tuned} (mean {mean_fine_tuned:.3f}) vs scratch {scratch} (mean {mean_scratch:.3f})")
    assert mean_fine_tuned > mean_scratch + 0.05
    assert all(f > s for f, s in zip(fine_tuned, scratch))


def test_fine_tuning_through_the_init_from_knob_beats_scratch(source) -> None:
    """The same claim end to end: `run_training` with `init_from` and `data.train_size: 50`."""
    def test_accuracy(config: dict[str, Any], seed: int) -> tuple[float, dict[str, Any]]:
        reports: list[dict[str, Any]] = []
        kept: dict[str, float] = {}

        def report(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
            reports.append(metrics)
            if checkpoint_dir is not None:
                kept["test"] = evaluate_checkpoint(checkpoint_dir)["test_accuracy"]

        data = {"name": "digits", "classes": SECOND_HALF, "train_size": SAMPLE}
        context = TrialContext(trainable="cnn", data=data, seed=seed, max_epochs=10, checkpoint_every=10)
        run_training({"lr": 3e-3, "batch_size": 16, **config}, context, report=report)
        return kept["test"], reports[0]

    fine_tuned, scratch = [], []
    for seed in SEEDS:
        accuracy, first = test_accuracy({"init_from": str(source["best"])}, seed)
        assert first.get("transfer_loaded", 1) > 0
        fine_tuned.append(accuracy)
        scratch.append(test_accuracy({}, seed)[0])
    print(f"run_training: fine-tuned {fine_tuned} vs scratch {scratch}")
    assert sum(fine_tuned) > sum(scratch) + 0.03 * len(SEEDS)


def test_a_head_trained_on_other_labels_is_not_loaded(source, tmp_path) -> None:
    """Same shape, other meaning: digits 0-4's head would start a 5-9 model with confidently wrong outputs."""
    weights = torch.load(source["best"] / "model.pt", weights_only=True)
    best = str(source["best"])

    def skipped(data: dict[str, Any] | None, where: str = best) -> list[str]:
        model = _digits_cnn(5)
        report = apply_init_from(model, where, storage=None, data=data)
        for name in report["loaded"]:
            assert torch.equal(model.state_dict()[name], weights[name])
        return report["skipped"]

    other = {"name": "digits", "classes": SECOND_HALF}
    assert skipped(other) == [
        "classifier.weight: the source's head was trained on other labels (digits classes [0, 1, 2, 3, 4] vs "
        "digits classes [5, 6, 7, 8, 9])",
        "classifier.bias: the source's head was trained on other labels (digits classes [0, 1, 2, 3, 4] vs "
        "digits classes [5, 6, 7, 8, 9])"]
    assert len(skipped(other, str(source["checkpoint"]))) == 2  # the checkpoint's record says so too
    assert skipped({"name": "digits", "classes": FIRST_HALF, "val_fraction": 0.3}) == []  # same labels
    assert skipped(None) == []  # nothing to compare with: shapes decide
    shutil.copy(source["best"] / "model.pt", tmp_path / "weights.pt")
    assert skipped(other, str(tmp_path / "weights.pt")) == []  # a bare .pt has no record
