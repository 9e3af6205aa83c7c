"""The runner end to end with user trainables: files on disk, ASHA, errors, TensorBoard, storage rules."""
from __future__ import annotations

import csv
import json

import pytest
import yaml

import tunerd
from tunerd.errors import UsageError

QUADRATIC = """\
name: {name}
trainable: tests.fixtures.toy:quadratic
metric: loss
mode: min
seed: 0
space:
  x: {{uniform: [-10, 10]}}
  offset: 0.25
  epochs: 9
search: {{algorithm: random, num_samples: {samples}}}
scheduler: {{name: {scheduler}, grace_period: 1, reduction_factor: 3}}
stop: {{max_epochs: 9}}
failures: {{max_retries: 0}}
"""


def launch(write_spec, tmp_path, *, name="quad", samples=4, scheduler="fifo", overrides=(), **kwargs):
    path = write_spec(QUADRATIC.format(name=name, samples=samples, scheduler=scheduler), f"{name}.yaml")
    experiment = tunerd.load(path, list(overrides), storage=str(tmp_path / "results"))
    return tunerd.launch(experiment, quiet=True, **kwargs)


def test_files_on_disk(ray_session, in_repo, write_spec, tmp_path):
    outcome = launch(write_spec, tmp_path)
    folder = outcome.folder
    assert folder == tmp_path / "results" / "quad"
    resolved = yaml.safe_load((folder / "spec.yaml").read_text())
    assert resolved["search"]["num_samples"] == 4 and resolved["scheduler"]["name"] == "fifo"
    assert resolved["checkpoint"] == {"every": 1, "keep": 2}  # defaults are written out

    summary = json.loads((folder / "summary.json").read_text())
    assert {"name", "state", "metric", "mode", "started", "updated", "best", "test", "trials"} <= set(summary)
    assert summary["state"] == "finished" and summary["metric"] == "loss"
    trial = summary["trials"][0]
    assert {"trial_id", "status", "config", "epochs", "last", "best"} <= set(trial)
    assert [h["epoch"] for h in trial["history"]] == list(range(1, 10)) and trial["last"]["epoch"] == 9
    assert [h["loss"] for h in trial["history"]] == sorted((h["loss"] for h in trial["history"]), reverse=True)
    best_loss = min(t["best"]["loss"] for t in summary["trials"])
    assert summary["best"]["metric"] == best_loss
    assert summary["best"]["config"]["offset"] == 0.25

    with open(folder / "leaderboard.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["loss"]) for r in rows] == sorted(float(r["loss"]) for r in rows)
    assert rows[0]["trial_id"] == summary["best"]["trial_id"] and "config/x" in rows[0]

    trial_dirs = sorted(p for p in folder.iterdir() if p.name.startswith("trial_"))
    assert len(trial_dirs) == 4
    assert (folder / "tuner.pkl").exists()  # a Ray Tune experiment folder: Tuner.restore works on it


def test_tensorboard_has_scalars_and_every_hparam(ray_session, in_repo, write_spec, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    outcome = launch(write_spec, tmp_path, name="tb", samples=2)
    trial_dir = next(p for p in outcome.folder.iterdir() if p.name.startswith("trial_"))
    events = EventAccumulator(str(trial_dir))
    events.Reload()
    assert {"loss", "score"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("loss")] == list(range(1, 10))
    content = events.PluginTagToContent("hparams")
    start = HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert set(start.hparams) == {"x", "offset", "epochs"}  # constants included, unlike Ray's own logger
    assert start.hparams["offset"].number_value == 0.25
    assert "_hparams_/session_end_info" in content
    assert "_hparams_/experiment" not in content  # TensorBoard infers the columns from every trial


def test_asha_stops_poor_trials_early_at_its_rungs(ray_session, in_repo, write_spec, tmp_path):
    outcome = launch(write_spec, tmp_path, name="asha", samples=9, scheduler="asha",
                     overrides=["search.max_concurrent=1"])
    trials = outcome.summary["trials"]
    stopped = [t for t in trials if t["status"] == "stopped"]
    finished = [t for t in trials if t["status"] == "finished"]
    assert stopped and finished
    assert all(t["epochs"] in (1, 3) for t in stopped)  # rungs: grace_period 1, reduction factor 3
    assert all(t["epochs"] == 9 for t in finished)
    best = outcome.summary["best"]
    assert any(t["trial_id"] == best["trial_id"] for t in finished)


def test_errored_trials_are_recorded_and_an_all_failed_experiment_fails(ray_session, in_repo, write_spec,
                                                                         tmp_path):
    path = write_spec(QUADRATIC.format(name="boom", samples=2, scheduler="fifo")
                      .replace("toy:quadratic", "toy:explode"), "boom.yaml")
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "results")), quiet=True)
    assert outcome.state == "failed"
    summary = json.loads((outcome.folder / "summary.json").read_text())
    assert summary["state"] == "failed" and summary["best"] is None
    assert all(t["status"] == "errored" for t in summary["trials"])
    assert all(t["error"].startswith("ValueError: bad configuration x=") for t in summary["trials"])


def test_existing_name_is_refused_unless_overwrite(ray_session, in_repo, write_spec, tmp_path):
    launch(write_spec, tmp_path, name="again", samples=1)
    with pytest.raises(UsageError, match="already exists.*--overwrite"):
        launch(write_spec, tmp_path, name="again", samples=1)
    outcome = launch(write_spec, tmp_path, name="again", samples=2, overwrite=True)
    assert len(outcome.summary["trials"]) == 2


def test_target_stops_the_whole_experiment(ray_session, in_repo, write_spec, tmp_path):
    outcome = launch(write_spec, tmp_path, name="target", samples=20,
                     overrides=["stop.target=1000", "search.max_concurrent=1"])
    # the first report already meets the target: nothing else is started
    assert len(outcome.summary["trials"]) < 20


def test_data_section_reaches_a_user_function_that_asks_for_it(ray_session, in_repo, write_spec, tmp_path):
    path = write_spec("""\
        name: data
        trainable: tests.fixtures.toy:with_data
        data: {name: mydata, anything: 1}
        metric: loss
        mode: min
        space: {a: {choice: [1]}}
        search: {algorithm: random, num_samples: 1}
        """)
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "results")), quiet=True)
    assert outcome.summary["best"]["metric"] == len("mydata")


def test_a_trial_that_fits_no_node_is_refused_before_it_waits_forever(ray_session, in_repo, write_spec, tmp_path):
    message = "asks for cpu 1, gpu 1 but the largest node of the Ray cluster has cpu 2, gpu 0"
    with pytest.raises(UsageError, match=message):
        launch(write_spec, tmp_path, name="gpu", samples=1, overrides=["resources.gpu=1"])
    with pytest.raises(UsageError, match="asks for cpu 3"):
        launch(write_spec, tmp_path, name="cpu", samples=1, overrides=["resources.cpu=3"])
    assert not (tmp_path / "results" / "gpu").exists()  # nothing was created


def test_a_local_folder_is_refused_on_a_multi_node_cluster_unless_shared(ray_session, in_repo, write_spec, tmp_path,
                                                                         monkeypatch):
    import ray

    from tunerd import runner

    three_nodes = [{"Alive": True, "Resources": {"CPU": 2}}] * 3 + [{"Alive": False}]
    monkeypatch.setattr(ray, "nodes", lambda: three_nodes)
    with pytest.raises(UsageError, match=r"a local folder, but the Ray cluster has 3 nodes.*--shared-storage"):
        launch(write_spec, tmp_path, name="multi", samples=1)
    assert not (tmp_path / "results" / "multi").exists()
    experiment = tunerd.load(write_spec(QUADRATIC.format(name="m", samples=1, scheduler="fifo")),
                             storage=str(tmp_path))
    runner.check_storage_reachable(experiment, shared=True)  # the user says every node mounts it
    remote = tunerd.load(write_spec(QUADRATIC.format(name="m", samples=1, scheduler="fifo")),
                         storage="s3://bucket/results")
    runner.check_storage_reachable(remote, shared=False)


def test_overwrite_keeps_the_old_results_when_the_new_run_cannot_start(ray_session, in_repo, write_spec, tmp_path):
    launch(write_spec, tmp_path, name="keep", samples=1)
    with pytest.raises(UsageError, match="gpu 1"):
        launch(write_spec, tmp_path, name="keep", samples=1, overwrite=True, overrides=["resources.gpu=1"])
    assert (tmp_path / "results" / "keep" / "summary.json").exists()


@pytest.mark.parametrize("storage, env, message", [
    ("file/sub", {}, r"file is a file, not a folder"),
    ("file", {}, r"file is a file, not a folder"),
    ("missing/mount/results", {}, r"its parent folder .*/missing/mount does not exist \(a typo, or a file system "
                                  r"that is not mounted\?\)"),
    ("/sys/tunerd-results", {}, r"storage /sys/tunerd-results is not writable: Operation not permitted"),
    ("results", {"TUNERD_MIN_FREE_MB": "1e12"}, r"only \d+ MB free on its file system, tunerd needs 1000000000000 MB"),
])
def test_a_storage_that_cannot_take_the_experiment_is_refused_before_ray_starts(storage, env, message, in_repo,
                                                                               write_spec, tmp_path, monkeypatch):
    import ray

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    (tmp_path / "file").write_text("not a folder")
    path = write_spec(QUADRATIC.format(name="x", samples=1, scheduler="fifo"))
    was_running = ray.is_initialized()
    with pytest.raises(UsageError, match=message):
        tunerd.launch(tunerd.load(path, storage=str(tmp_path / storage)), quiet=True)
    assert ray.is_initialized() == was_running  # refused before Ray was started
    assert not (tmp_path / "missing").exists() and not (tmp_path / "results" / "x").exists()


def test_median_rule_stops_trials_below_the_median(ray_session, in_repo, write_spec, tmp_path):
    outcome = launch(write_spec, tmp_path, name="median", samples=8, scheduler="median",
                     overrides=["search.max_concurrent=1"])
    statuses = [t["status"] for t in outcome.summary["trials"]]
    assert "stopped" in statuses and "finished" in statuses


def test_time_budget_ends_the_experiment_as_finished(ray_session, in_repo, write_spec, tmp_path):
    # 8 s: long enough for a first report on a loaded machine (a trial's actor can take seconds to start)
    path = write_spec(QUADRATIC.format(name="budget", samples=50, scheduler="fifo")
                      .replace("toy:quadratic", "toy:slow")
                      .replace("stop: {max_epochs: 9}", "stop: {max_epochs: 40, time_budget_s: 8}")
                      .replace("  epochs: 9", "  epochs: 40"))
    outcome = tunerd.launch(tunerd.load(path, storage=str(tmp_path / "results")), quiet=True)
    assert outcome.state == "finished"
    assert len(outcome.summary["trials"]) < 50
    assert not any(t["status"] == "finished" for t in outcome.summary["trials"])  # 20 s of epochs > budget
