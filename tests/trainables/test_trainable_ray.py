"""One end-to-end check through a real Ray Tune run: reporting, checkpoint persistence, and resources."""
from __future__ import annotations

from ray import tune

from trainables import METRIC_KEYS, TrialContext, evaluate_checkpoint, train_builtin


def test_train_builtin_under_a_tuner(ray_session, tmp_path) -> None:
    context = TrialContext(trainable="cnn", data={"name": "digits", "val_fraction": 0.2, "test_fraction": 0.2,
                                                  "folds": 0}, max_epochs=2)
    trainable = tune.with_resources(tune.with_parameters(train_builtin, context=context), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        param_space={"lr": 3e-3, "arch": {"filters": tune.choice([8])}},
        tune_config=tune.TuneConfig(num_samples=1, metric="val_accuracy", mode="max"),
        run_config=tune.RunConfig(name="trainables-ray", storage_path=str(tmp_path), verbose=0,
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
    )
    results = tuner.fit()
    assert not results.errors
    result = results.get_best_result()
    assert set(METRIC_KEYS) <= set(result.metrics) and result.metrics["epoch"] == 2
    assert list(result.metrics_dataframe["epoch"]) == [1, 2]
    assert result.checkpoint is not None
    scores = evaluate_checkpoint(result.checkpoint.path)
    assert 0.0 <= scores["test_accuracy"] <= 1.0 and scores["test_samples"] == 360
