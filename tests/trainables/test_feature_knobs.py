"""`select_features` and `pca`: fitted on the training split only (a fold's own training part with k folds),
carried by the model, so export, test scoring, folds, ensembles, int8 and `init_from` work unchanged."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.feature_selection import mutual_info_classif

from trainables import evaluate_checkpoint, export_best, load_dataset, load_model, run_training
from trainables.configs import MLPConfig
from trainables.export import quantize_export
from trainables.features import FeatureFit
from trainables.knobs import parse_knobs
from trainables.models import Ensemble, FeatureMap
from trainables.models.mlp import MLP

#: the conftest's `trial_context` splits
SPLITS = {"val_fraction": 0.2, "test_fraction": 0.2, "folds": 0}


def data_of(name: str, **spec) -> dict:
    return {**SPLITS, "name": name, **spec}


def top_k(x: torch.Tensor, y: torch.Tensor, k: int, seed: int = 0) -> list[int]:
    """scikit-learn's own choice: the k columns of highest mutual information with the label."""
    scores = mutual_info_classif(x.numpy(), y.numpy(), random_state=seed)
    return sorted(np.argsort(-scores, kind="stable")[:k].tolist())


def feature_maps(model: torch.nn.Module) -> list[FeatureMap]:
    return [module for module in model.modules() if isinstance(module, FeatureMap)]


def test_select_features_keeps_the_top_mutual_information_of_the_training_split(recorder, trial_context) -> None:
    run_training({"select_features": 5, "lr": 0.01}, trial_context("mlp", "wine"), report=recorder)
    assert [r["n_features"] for r in recorder.reports] == [5, 5]
    model = load_model(recorder.checkpoints[2])
    data = load_dataset(data_of("wine"), 0)
    assert model.feature_map.columns.tolist() == top_k(data.x_train, data.y_train, 5)
    assert model.features[1].in_features == 5  # Flatten, then the first hidden layer
    assert model(data.x_test).shape == (len(data.y_test), 3)


def test_the_fit_reads_the_training_rows_only() -> None:
    config = MLPConfig(select_features=6, pca=3)
    data = load_dataset(data_of("breast_cancer"), 0)
    noise = torch.Generator().manual_seed(1)
    scrambled = replace(data, x_val=torch.randn(data.x_val.shape, generator=noise),
                        x_test=torch.randn(data.x_test.shape, generator=noise), y_val=data.y_val.flip(0),
                        y_test=data.y_test.flip(0))
    fitted, other = FeatureFit(config, data, 0).state, FeatureFit(config, scrambled, 0).state
    assert fitted.keys() == {"columns", "mean", "components"}
    assert all(torch.equal(fitted[key], other[key]) for key in fitted)
    # ... and it is the training rows' fit: selection by sklearn, then its PCA on the kept columns
    columns = top_k(data.x_train, data.y_train, 6)
    assert fitted["columns"].tolist() == columns
    pca = PCA(n_components=3, random_state=0).fit(data.x_train[:, columns].double().numpy())
    assert torch.allclose(fitted["mean"], torch.from_numpy(pca.mean_).float(), atol=1e-6)
    assert torch.allclose(fitted["components"], torch.from_numpy(pca.components_).float(), atol=1e-6)
    # the test is sensitive: other training rows give another fit
    fewer = replace(data, x_train=data.x_train[:120], y_train=data.y_train[:120])
    assert not torch.equal(FeatureFit(config, fewer, 0).state["components"], fitted["components"])


def test_pca_reduces_n_features(new_recorder, trial_context) -> None:
    plain, reduced, both = new_recorder(), new_recorder(), new_recorder()
    run_training({"lr": 0.01}, trial_context("mlp", "breast_cancer", max_epochs=1), report=plain)
    run_training({"pca": 4, "lr": 0.01}, trial_context("mlp", "breast_cancer", max_epochs=1), report=reduced)
    run_training({"select_features": 8, "pca": 3, "hidden_layers": 0, "lr": 0.01},
                 trial_context("mlp", "breast_cancer", max_epochs=1), report=both)
    assert plain.last["n_features"] == 30 and reduced.last["n_features"] == 4 and both.last["n_features"] == 3
    model = load_model(reduced.checkpoints[1])
    assert model.feature_map.columns is None and model.feature_map.components.shape == (4, 30)
    assert model.features[1].in_features == 4
    logistic = load_model(both.checkpoints[1])
    assert logistic.classifier.in_features == 3 and logistic.feature_map.components.shape == (3, 8)
    assert not reduced.last["diverged"] and not both.last["diverged"]


def test_n_features_is_not_reported_for_images(recorder, trial_context) -> None:
    run_training({"hidden_layers": 0}, trial_context("mlp", "digits", max_epochs=1), report=recorder)
    assert "n_features" not in recorder.last


def test_folds_fit_on_each_folds_own_training_part(recorder, trial_context) -> None:
    spec = data_of("wine", folds=3)
    run_training({"select_features": 5, "lr": 0.01}, trial_context("mlp", spec), report=recorder)
    assert recorder.last["n_features"] == 5 and "fold2_val_accuracy" in recorder.last
    model = load_model(recorder.checkpoints[2])
    data = load_dataset(spec, 0)
    parts = data.folds(3, 0)
    assert [m.model.feature_map.columns.tolist() for m in model.members] == [
        top_k(part.x_train, part.y_train, 5) for part in parts]
    with torch.no_grad():
        predicted = model(data.x_test).argmax(1)
    test = evaluate_checkpoint(recorder.checkpoints[2])
    assert test["test_accuracy"] == pytest.approx((predicted == data.y_test).double().mean().item())


def test_the_export_scores_the_splits_as_the_loop_did(recorder, trial_context, tmp_path) -> None:
    knobs = {"members": 2, "select_features": 6, "pca": 4, "lr": 0.01}
    run_training(knobs, trial_context("ensemble", "breast_cancer", seed=3), report=recorder)
    dest = export_best(recorder.checkpoints[2], tmp_path / "best")
    model = load_model(dest)
    assert isinstance(model, Ensemble) and len(feature_maps(model)) == 2
    data = load_dataset(data_of("breast_cancer"), 3)
    config = parse_knobs("ensemble", knobs).model
    expected = FeatureFit(config, data, 3).state
    assert all(torch.equal(fm.components, expected["components"]) for fm in feature_maps(model))
    val = evaluate_checkpoint(dest, split="val")
    assert val["val_accuracy"] == pytest.approx(recorder.last["val_accuracy"])
    assert val["val_loss"] == pytest.approx(recorder.last["val_loss"], rel=1e-5)
    test = evaluate_checkpoint(dest)
    with torch.no_grad():
        predicted = model(data.x_test).argmax(1)
    assert test["test_accuracy"] == pytest.approx((predicted == data.y_test).double().mean().item())
    int8 = quantize_export(dest)
    assert int8["accuracy_before"] == pytest.approx(test["test_accuracy"])
    quantized = load_model(dest, int8=True)
    assert all(torch.equal(fm.columns, expected["columns"]) for fm in feature_maps(quantized))


def test_init_from_keeps_this_trials_own_fit(new_recorder, trial_context, tmp_path) -> None:
    source = new_recorder()
    run_training({"select_features": 5, "lr": 0.01}, trial_context("mlp", "wine", max_epochs=1), report=source)
    best = export_best(source.checkpoints[1], tmp_path / "best")
    target = new_recorder()
    context = trial_context("mlp", data_of("wine", train_size=60), max_epochs=1)
    run_training({"select_features": 5, "lr": 0.01, "init_from": str(best)}, context, report=target)
    assert target.last["transfer_loaded"] > 0 and target.last["n_features"] == 5
    data = load_dataset(context.data, 0)
    assert load_model(target.checkpoints[1]).feature_map.columns.tolist() == top_k(data.x_train, data.y_train, 5)


@pytest.mark.parametrize("knobs, data, message", [
    ({"select_features": 5}, "digits", r"select_features: works on tabular data only \(this data set is image\)"),
    ({"pca": 5}, "digits", r"pca: works on tabular data only \(this data set is image\)"),
    ({"select_features": 14}, "wine", r"select_features: must be <= the 13 features of the data, got 14"),
    ({"pca": 14}, "wine", r"pca: must be <= the 13 features of the data, got 14"),
    ({"select_features": 5, "pca": 6}, "wine", r"pca: must be <= the 5 features left after select_features, got 6"),
    ({"pca": 12}, {"name": "wine", "train_size": 9}, r"pca: must be <= the 9 training rows, got 12"),
])
def test_the_trial_stops_at_its_start(knobs, data, message, recorder, trial_context) -> None:
    with pytest.raises(ValueError, match=message):
        run_training(knobs, trial_context("mlp", data), report=recorder)
    assert recorder.reports == []


def test_the_knob_rules() -> None:
    for bad in ({"select_features": 0}, {"pca": -1}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))}: must be >= 1 \\(null = off\\)"):
            MLPConfig(**bad)
    assert MLPConfig().n_features(13) == 13 and MLPConfig(select_features=4, pca=2).n_features(13) == 2
    with pytest.raises(ValueError, match="unknown knob 'pca' for trainable 'cnn'"):
        parse_knobs("cnn", {"pca": 3})
    with pytest.raises(ValueError, match="knob 'select_features' is a knob of mlp, not of this ensemble's base"):
        parse_knobs("ensemble", {"base": "cnn", "select_features": 3})


def test_without_the_knobs_the_mlp_is_unchanged() -> None:
    torch.manual_seed(0)
    model = MLP(MLPConfig(), (13,), 3)
    assert not any(key.startswith("feature_map") for key in model.state_dict())
    x = torch.randn(4, 13)
    assert torch.equal(model.feature_map(x), x)
