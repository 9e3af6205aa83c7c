"""Multi-worker trials (`resources.workers: 2`): DDP over Ray Train workers through the whole stack, on the
test session's Ray (2 CPUs, no dashboard: the setting in which Ray itself leaks a stopped Train run's
placement group). The loop's data-parallel arithmetic is tested without Ray in tests/trainables/test_ranks.py."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

import tunerd
from tunerd.errors import SpecError
from tunerd.reaper import orphaned_placement_groups, remove_orphaned_placement_groups
from tunerd.resources import fit, max_concurrent, misfit_message
from tunerd.spec import ResourcesSpec, validate

BASE = {"name": "w", "trainable": "mlp", "space": {"lr": 0.01}}


def problems_of(raw: dict) -> list[str]:
    """Each problem of an experiment mapping as `path: message`."""
    with pytest.raises(SpecError) as caught:
        validate(raw)
    return [problem.render(None) for problem in caught.value.problems]


def problems(**resources) -> list[str]:
    return problems_of({**BASE, "resources": resources})


def test_the_spec_accepts_workers_for_built_ins_and_refuses_what_cannot_run() -> None:
    assert validate({**BASE, "resources": {"workers": 2, "cpu": 0.5}}).spec.resources.workers == 2
    ensemble = {**BASE, "trainable": "ensemble", "data": {"name": "wine", "folds": 3}, "resources": {"workers": 4}}
    assert validate(ensemble).spec.resources.workers == 4  # ensembles and folds train data-parallel too
    assert validate({**BASE, "resources": {"workers": 2, "gpu": 1}}).spec.resources.gpu == 1
    assert any("resources.workers" in p and "built-in trainables only" in p
               for p in problems_of({**BASE, "trainable": "tests.fixtures.toy:train", "resources": {"workers": 2}}))
    assert any("resources.gpu" in p and "whole GPU" in p for p in problems(workers=2, gpu=0.5))
    assert any("resources.gpu" in p and "more workers" in p for p in problems(workers=2, gpu=2))
    assert any("resources.workers" in p for p in problems(workers=0))
    plan = tunerd.plan(validate({**BASE, "resources": {"workers": 3, "cpu": 2}}))
    assert plan["resources per trial"] == "3 workers, each cpu 2, gpu 0"


def node(cpu: float, gpu: float = 0) -> dict:
    return {"Alive": True, "Resources": {"CPU": cpu, "GPU": gpu, "memory": 1e9}}


def test_workers_times_their_resources_must_fit_and_cap_the_trials_at_once() -> None:
    two = ResourcesSpec(workers=2, cpu=1)
    assert fit(two, [node(2)]).fits and max_concurrent(two, None, [node(2)]) == 1
    assert max_concurrent(two, None, [node(4), node(3)]) == 3 and max_concurrent(two, 2, [node(8)]) == 2
    assert fit(ResourcesSpec(workers=3, cpu=1), [node(2), node(1)]).fits  # workers may spread over nodes
    short = fit(ResourcesSpec(workers=3, cpu=1), [node(2)])
    assert not short.fits and short.concurrent_trials == 1
    message = misfit_message(ResourcesSpec(workers=3, cpu=1), short)
    assert "resources.workers 3" in message and "cpu 3, gpu 0 in all" in message and "holds 2 such workers" in message
    gpus = ResourcesSpec(workers=2, cpu=1, gpu=1)
    assert not fit(gpus, [node(8, 1)]).fits and fit(gpus, [node(8, 1), node(8, 1)]).fits
    assert fit(ResourcesSpec(cpu=0.1), [node(1)]).slots == 10  # Ray's 1e-4 units, not float division
    assert max_concurrent(ResourcesSpec(cpu=1), None, [node(2)]) is None  # one worker: Tune's own accounting
    # a model-based searcher gets the slots, or Ray Tune would let it start one trial at a time
    assert max_concurrent(ResourcesSpec(cpu=1), None, [node(2)], model_based=True) == 2
    assert max_concurrent(ResourcesSpec(cpu=1, gpu=0.25), None, [node(16, gpu=1)], model_based=True) == 4
    assert max_concurrent(ResourcesSpec(cpu=1), 1, [node(2)], model_based=True) == 1


def test_a_two_worker_experiment_that_cannot_fit_is_refused_before_it_starts(ray_session, write_spec, tmp_path):
    path = write_spec("""\
        name: too-big
        trainable: mlp
        space: {lr: 0.01}
        resources: {workers: 3, cpu: 1}
        """)
    with pytest.raises(tunerd.UsageError, match="resources.workers 3"):
        tunerd.launch(tunerd.load(path, storage=str(tmp_path / "r")), quiet=True)


def test_the_reaper_frees_a_placement_group_whose_creating_actor_died(ray_session) -> None:
    """What a Train controller leaves when its trial's process dies; the driver's own groups (Tune's
    trials) and those of live actors are left alone."""
    ray = ray_session
    from ray.util.placement_group import placement_group, remove_placement_group

    @ray.remote(num_cpus=0)
    class Controller:
        def start_workers(self, workers: int) -> bool:
            self.group = placement_group([{"CPU": 0.5}] * workers)
            return ray.get(self.group.ready(), timeout=30) is not None

    def orphans_within(seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        while not (found := orphaned_placement_groups()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return found

    mine = placement_group([{"memory": 1}])
    alive, doomed = Controller.remote(), Controller.remote()
    assert ray.get(alive.start_workers.remote(1)) and ray.get(doomed.start_workers.remote(2))
    assert orphaned_placement_groups() == []
    ray.kill(doomed)
    orphans = orphans_within(10)
    assert len(orphans) == 1 and remove_orphaned_placement_groups() == orphans
    deadline = time.monotonic() + 10
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"] - 0.5 \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ray.available_resources()["CPU"] == ray.cluster_resources()["CPU"] - 0.5  # the live actor's half
    ray.kill(alive)
    orphans_within(10)
    remove_orphaned_placement_groups()
    remove_placement_group(mine)
    assert wait_for_all_cpus(ray) < 10


def kill_a_train_worker_at(summary: Path, epoch: int, killed: list[int], timeout_s: float = 300) -> None:
    """Once the running trial has reported `epoch`, SIGKILL one of its Ray Train workers (by pid, from
    Ray's actor table: the GCS answers without a dashboard)."""
    from ray._private import state

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            trials = json.loads(summary.read_text())["trials"]
        except (OSError, ValueError, KeyError):
            trials = []
        if any(t["epochs"] >= epoch and t["status"] == "running" for t in trials):
            workers = [a for a in state.actors().values()
                       if a["ActorClassName"] == "RayTrainWorker" and a["State"] == "ALIVE"]
            if workers:
                os.kill(workers[0]["Pid"], signal.SIGKILL)
                killed.append(workers[0]["Pid"])
                return
        time.sleep(0.1)


def wait_for_all_cpus(ray, timeout_s: float = 10) -> float:
    """Seconds until every CPU of the cluster is free again (or the timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"]:
            break
        time.sleep(0.2)
    return time.monotonic() - started


def test_two_workers_train_resume_after_a_worker_dies_are_stopped_by_asha_and_free_their_cpus(
        ray_session, write_spec, tmp_path):
    """One experiment, two 2-worker trials one after the other (2 CPUs hold one): the good one loses a
    worker at epoch 2, is retried from its checkpoint and finishes; ASHA stops the bad one at epoch 1.
    Then every CPU is free again, and the next experiment gets all of them."""
    path = write_spec("""\
        name: ddp
        trainable: mlp
        data: {name: mnist}
        space: {lr: {grid: [0.003, 1.0e-7]}, batch_size: 32, units: 64, epochs: 5}
        search: {algorithm: grid}
        scheduler: {name: asha, grace_period: 1, reduction_factor: 2}
        stop: {max_epochs: 5}
        resources: {workers: 2, cpu: 1}
        failures: {max_retries: 1}
        """)
    storage = tmp_path / "r"
    killed: list[int] = []
    killer = threading.Thread(target=kill_a_train_worker_at, args=(storage / "ddp" / "summary.json", 2, killed),
                              daemon=True)
    killer.start()
    outcome = tunerd.launch(tunerd.load(path, storage=str(storage)), quiet=True)
    killer.join(timeout=1)
    summary = outcome.summary
    good, bad = sorted(summary["trials"], key=lambda t: -t["config"]["lr"])
    assert killed, "no Train worker was killed: the good trial ended before its second epoch was seen"
    assert good["status"] == "finished" and good["retries"] == 1, good
    assert [h["epoch"] for h in good["history"]] == [1, 2, 3, 4, 5]
    reported = [json.loads(line)["epoch"] for line in
                (storage / "ddp" / f"trial_{good['trial_id']}" / "result.json").read_text().splitlines()]
    assert reported.count(1) == 1 and reported[-1] == 5, reported  # the retry went on from a checkpoint
    assert good["last"]["val_accuracy"] > 0.85
    assert bad["status"] == "stopped" and bad["epochs"] == 1, bad  # ASHA's first rung
    assert summary["best"]["trial_id"] == good["trial_id"] and (outcome.folder / "best" / "model.pt").exists()
    assert summary["test"]["test_samples"] == 1000
    assert not any((storage / "ddp" / "train_runs").iterdir())  # the Train runs' scratch is gone

    waited = wait_for_all_cpus(ray_session)
    assert ray_session.available_resources()["CPU"] == ray_session.cluster_resources()["CPU"], waited
    next_one = write_spec("""\
        name: all-cpus
        trainable: mlp
        data: {name: wine}
        space: {lr: 0.01, epochs: 1}
        search: {algorithm: grid}
        scheduler: {name: fifo}
        stop: {max_epochs: 1, time_budget_s: 120}
        resources: {cpu: 2}
        """, "next.yaml")
    after = tunerd.launch(tunerd.load(next_one, storage=str(storage)), quiet=True).summary
    assert after["state"] == "finished" and after["trials"][0]["status"] == "finished"
