"""The record's rendering and its write schedule (no Ray needed): summary.json is the same data however it is
encoded, and it is rewritten at most about once a second however many trials end."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
from pyarrow.fs import LocalFileSystem

from tunerd.objectives import Goal
from tunerd.results import ExperimentRecord, RecordCallback, _jsonable, compact_json
from tunerd.tensorboard import HParamsTensorBoardCallback


def record_with_trials(tmp_path, n: int = 5) -> ExperimentRecord:
    record = ExperimentRecord(tmp_path, name="x", goal=Goal.single("loss", "min"), trial_count=n + 2)
    for i in range(n):
        config = {"lr": 10.0 ** -i, "group": {"units": np.int64(8 * (i + 1))}, "shape": (1, 2)}
        record.started_trial(f"t{i}", config, i)
        record.add_result(f"t{i}", config, {"epoch": 1, "loss": 1.0 / (i + 1), "val_accuracy": np.float64(0.5)})
        record.ended_trial(f"t{i}", config, max_epochs=1)
    record.started_trial("nan", {"lr": 1.0}, n)
    record.add_result("nan", {"lr": 1.0}, {"epoch": 1, "loss": math.nan})
    return record


def test_summary_file_holds_the_summary(tmp_path):
    record = record_with_trials(tmp_path)
    record.write()
    written = json.loads((tmp_path / "summary.json").read_text())
    expected = _jsonable(record.summary().to_json())
    assert written.pop("updated") and expected.pop("updated")
    assert written == expected
    assert written["trials"][-1]["last"] == {"epoch": 1, "loss": None, "diverged": True}  # NaN -> null
    assert written["trials"][0]["config"]["group"]["units"] == 8  # numpy -> plain numbers


def test_a_trial_keeps_its_first_index_and_no_two_trials_share_one(tmp_path):
    """After `Tuner.restore` Ray Tune lists its trials by last result, newest first: a trial that starts again
    (retried, resumed) is at another place in that list, and a new trial may be at a place an old one has.
    (The 1,000-trial soak found 42 shared indices before this.)"""
    record = record_with_trials(tmp_path, n=3)  # t0, t1, t2, then "nan" at 3
    record.started_trial("t0", {}, 3)  # resumed, now fourth in Ray's list
    record.started_trial("new", {"lr": 0.5}, 1)  # new after a resume, where t1 is
    record.add_result("late", {}, {"epoch": 1, "loss": 0.1})  # first seen in a result
    indices = {t.trial_id: t.index for t in record.trials.values()}
    assert indices == {"t0": 0, "t1": 1, "t2": 2, "nan": 3, "new": 4, "late": 5}


def test_summary_file_without_trials(tmp_path):
    ExperimentRecord(tmp_path, name="x", goal=Goal.single("loss", "min"), trial_count=3).write()
    assert json.loads((tmp_path / "summary.json").read_text())["trials"] == []


class Opaque:
    def __str__(self) -> str:
        return "opaque"


def test_compact_json_matches_the_slow_path():
    for value in ({"a": 1.5, "b": [1, (2, 3)], "c": None, "d": "x"}, {"n": math.inf}, {1: np.float32(0.5)},
                  {"o": Opaque(), "i": np.int64(3), "t": np.bool_(True)}):
        assert json.loads(compact_json(value)) == json.loads(json.dumps(_jsonable(value)))


def test_best_is_the_first_ranked_ties_included(tmp_path):
    for mode in ("min", "max"):
        record = ExperimentRecord(tmp_path, name="x", goal=Goal.single("m", mode), trial_count=4)
        for i, value in enumerate([2.0, 1.0, 2.0, 1.0]):
            record.add_result(f"t{i}", {}, {"epoch": 1, "m": value})
        assert record.best() is record.ranked()[0]
    assert ExperimentRecord(tmp_path, name="x", goal=Goal.single("m", "min"), trial_count=1).best() is None


class CountingRecord(ExperimentRecord):
    writes = 0

    def write(self) -> None:
        self.writes += 1


def test_record_is_written_at_most_once_an_interval_and_at_the_end(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("tunerd.results.time.monotonic", lambda: clock[0])
    record = CountingRecord(tmp_path, name="x", goal=Goal.single("loss", "min"), trial_count=50)
    callback = RecordCallback(record, max_epochs=1, min_interval_s=1.0)
    trials = [SimpleNamespace(trial_id=f"t{i}", config={}, error_file=None) for i in range(50)]
    for trial in trials:  # 50 trials start, report and end within the same instant
        callback.on_trial_start(0, trials, trial)
        callback.on_trial_result(0, trials, trial, {"epoch": 1, "loss": 1.0})
        callback.on_trial_complete(0, trials, trial)
    assert record.writes == 1
    callback.on_step_end(0, trials)
    assert record.writes == 1  # not yet: less than an interval since the last write
    clock[0] += 1.0
    callback.on_step_end(0, trials)  # the changes since are written by the next step
    assert record.writes == 2
    clock[0] += 5.0
    callback.on_step_end(0, trials)
    assert record.writes == 2  # nothing changed
    callback.on_experiment_end(trials)
    assert record.writes == 3  # always at the end
    assert record.counts()["finished"] == 50


class FakeTrial:
    """What the TensorBoard callback reads of a Ray Tune trial (hashable, as trials are)."""

    def __init__(self, path) -> None:
        self.config, self.path, self.trial_id = {"lr": 0.1, "units": [8, 16]}, str(path), "t"
        self.storage = SimpleNamespace(storage_filesystem=LocalFileSystem())


def test_event_file_is_read_back_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    callback = HParamsTensorBoardCallback(("loss",))
    trial = FakeTrial(tmp_path)
    callback.log_trial_start(trial)
    for epoch in (1, 2):
        callback.log_trial_result(epoch, trial, {"epoch": epoch, "loss": 1.0 / epoch, "ok": True, "bad": math.nan,
                                                 "time_this_iter_s": 1.0})
    callback.log_trial_end(trial)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [(s.step, s.value) for s in events.Scalars("loss")] == [(1, 1.0), (2, 0.5)]
    assert events.Tags()["scalars"] == ["loss"]
    content = events.PluginTagToContent("hparams")
    assert {"_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(content)


def test_summary_json_reads_back_into_the_same_typed_summary(tmp_path):
    from tunerd.summary import ExperimentState, Summary, TrialStatus

    record = record_with_trials(tmp_path)
    record.state = ExperimentState.FINISHED
    record.error, record.driver = None, {"host": "h", "pid": 1}
    record.write()
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["state"] == "finished" and written["trials"][0]["status"] == "finished"  # plain JSON text
    summary = Summary.from_json(written)
    assert summary.state is ExperimentState.FINISHED and summary.trials[0].status is TrialStatus.FINISHED
    assert summary.best.trial_id == record.best().trial_id and summary.driver == {"host": "h", "pid": 1}
    assert [t.trial_id for t in summary.ranked()] == [t.trial_id for t in record.ranked()]
    assert summary.done == 5 and summary.counts["running"] == 1 and summary.counts["pending"] == 1


def test_one_ranking_best_first_ties_to_the_earlier_trial_unscored_last():
    from tunerd.summary import TrialRecord, best_trial, rank_trials

    def trial(index, value):
        return TrialRecord(trial_id=f"t{index}", config={}, index=index, best={} if value is None else {"m": value})

    trials = [trial(3, 1.0), trial(0, None), trial(1, 2.0), trial(2, 1.0), trial(4, float("nan"))]
    assert [t.trial_id for t in rank_trials(trials, Goal.single("m", "min"))] == ["t2", "t3", "t1", "t0", "t4"]
    assert [t.trial_id for t in rank_trials(trials, Goal.single("m", "max"))] == ["t1", "t2", "t3", "t0", "t4"]
    assert best_trial(trials, Goal.single("m", "min")) is rank_trials(trials, Goal.single("m", "min"))[0]
