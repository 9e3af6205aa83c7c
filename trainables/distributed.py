"""A multi-worker trial (`resources.workers: N > 1`): one Ray Tune trial whose training runs data-parallel on
N Ray Train workers (DistributedDataParallel; gloo on CPU, nccl on GPU), each running `loop.run_training`.

Ray 2.60's Train V2 takes no `TorchTrainer` in `tune.Tuner`: a trial has to start its own
`TorchTrainer(...).fit()`. Ray's recipe for that (a function trial blocked in `fit()` with
`ray.tune.integration.ray_train.TuneReportCallback`) has two gaps tunerd cannot live with, both seen here:
- Tune never gets a checkpoint (the callback forwards metrics only), so retries, `checkpoint.keep` and the
  exported `best/` would have nothing to work with;
- when Tune stops the trial (ASHA, a stopper, the time budget) nothing stops the Train run: the trial's
  process is killed, which kills the Train controller, and the controller's placement group is freed only
  by Ray's `PlacementGroupCleaner`, which asks the Ray dashboard's state API whether the controller is
  dead. Without a dashboard (tunerd's embedded Ray has none), or when that API finds more than one Ray on
  the machine, it never learns it, and the workers' CPUs and GPUs stay reserved until the driver exits:
  the next trials wait forever.
So the trial is a Tune *class* trainable, `DistributedTrial`, whose lifecycle maps onto the Train run's:
`step` hands Tune the run's next report, `save_checkpoint` copies the checkpoint rank 0 wrote into Tune's
checkpoint, `load_checkpoint` passes a Tune checkpoint to the workers of the next run, and `cleanup`
(which Tune calls, and waits for, before it lets the trial's process go) aborts the Train run the way
Ctrl-C does, so its workers and placement group are released at once.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import ray.train
import torch
from ray import tune
from ray.tune.result import DONE, SHOULD_CHECKPOINT
from ray.util.queue import Empty, Queue

from trainables.builtin import cpu_share
from trainables.checkpoint import CHECKPOINT_FILE
from trainables.context import TrialContext
from trainables.loop import run_training
from trainables.ranks import Ranks
from tunerd.ray_internals import train_controller_callback

log = logging.getLogger(__name__)

#: a trial's own process only relays reports, so it reserves no CPU: Ray Tune refuses a 0-CPU trial, but
#: one byte of Ray's logical `memory` resource makes a placement group that reserves nothing else
DRIVER_RESOURCES = {"memory": 1}
#: how long `cleanup` waits for the Train controller to abort before it kills it (Tune force-kills a trial's
#: process 10 s after asking it to stop when an experiment ends)
ABORT_TIMEOUT_S = 8.0


@dataclass(frozen=True, kw_only=True)
class WorkerGroup:
    """The Ray Train workers of every trial of an experiment, and where their run keeps its files."""

    workers: int
    #: `RunConfig.storage_path` of each trial's Train run (a folder every node sees, or a URI); the run's
    #: folder there is scratch, removed when the trial ends: Tune keeps the checkpoints
    storage: str
    #: per worker (a trial takes workers x these)
    cpu: float = 1.0
    gpu: float = 0.0

    def __post_init__(self) -> None:
        if self.workers < 2:
            raise ValueError(f"workers must be >= 2 for a multi-worker trial, got {self.workers}")
        if self.cpu <= 0 or self.gpu < 0:
            raise ValueError(f"cpu must be > 0 and gpu >= 0 per worker, got cpu {self.cpu}, gpu {self.gpu}")
        if not self.storage:
            raise ValueError("storage must name where the Train runs keep their files")


def train_worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker of a trial: the shared loop, on this rank's shard of the training split."""
    import ray.train.torch

    context = ray.train.get_context()
    ranks = Ranks(context.get_world_rank(), context.get_world_size())
    torch.set_num_threads(cpu_share())
    with _start_folder(loop_config["start"]) as start:
        run_training(loop_config["config"], loop_config["context"], report=_report_to_train, start_checkpoint=start,
                     device=ray.train.torch.get_device(), ranks=ranks)


@contextlib.contextmanager
def _start_folder(checkpoint: bytes | None) -> Iterator[Path | None]:
    """A folder holding the `checkpoint.pt` to resume from (its bytes travel with the run's config, so a
    worker on any node gets it), or None."""
    if checkpoint is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="tunerd-start-") as folder:
        (Path(folder) / CHECKPOINT_FILE).write_bytes(checkpoint)
        yield Path(folder)


def _report_to_train(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
    """Every rank reports every epoch (Ray Train waits for all); only rank 0 brings a checkpoint, which Ray
    copies to the run's storage before `report` returns."""
    checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir is not None else None
    ray.train.report(metrics, checkpoint=checkpoint)


class _Relay(ray.train.UserCallback):
    """Runs in the Train controller: hands the trial each report with its persisted checkpoint, through a
    Ray queue of one item (so the run waits for Tune, as a function trial does)."""

    def __init__(self, channel: Queue) -> None:
        self.channel = channel

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]],
                     checkpoint: ray.train.Checkpoint | None) -> None:
        self.channel.put(("report", (dict(metrics[0]), checkpoint)))  # rank 0's; every rank's are the same


class _ControllerHandle(train_controller_callback()):
    """Runs in the Train controller: hands the trial the controller's handle, so the trial can abort it.
    A separate object: Ray Train calls a `UserCallback` only through its user-callback handler, which
    knows no controller events (Ray's own workarounds use internal callbacks the same way)."""

    def __init__(self, channel: Queue) -> None:
        self.channel = channel

    def after_controller_start(self, train_run_context: Any) -> None:
        self.channel.put(("controller", ray.get_runtime_context().current_actor))


class TrainRun:
    """One `TorchTrainer.fit()` of a trial, in a thread of the trial's process; `next()` blocks for its next
    report, `stop()` aborts it (or waits for its end) and removes its scratch folder."""

    def __init__(self, config: dict[str, Any], context: TrialContext, group: WorkerGroup, *, name: str,
                 start: bytes | None) -> None:
        from ray.train.torch import TorchTrainer

        self.name = name
        self.storage = group.storage
        self.channel = Queue(maxsize=1, actor_options={"num_cpus": 0})
        self.controller: Any = None
        self.error: BaseException | None = None
        use_gpu = group.gpu > 0
        trainer = TorchTrainer(
            train_worker,
            train_loop_config={"config": config, "context": context, "start": start},
            scaling_config=ray.train.ScalingConfig(num_workers=group.workers, use_gpu=use_gpu,
                                                   resources_per_worker={"CPU": group.cpu,
                                                                         **({"GPU": group.gpu} if use_gpu else {})}),
            run_config=ray.train.RunConfig(
                name=name, storage_path=group.storage,
                callbacks=[_ControllerHandle(self.channel), _Relay(self.channel)],
                # Tune retries a failed trial from its checkpoint: the Train run itself does not retry
                failure_config=ray.train.FailureConfig(max_failures=0),
            ),
        )
        self.thread = threading.Thread(target=self._fit, args=(trainer,), name=f"train-{name}", daemon=True)
        self.thread.start()

    def _fit(self, trainer: Any) -> None:
        try:
            trainer.fit()
        except BaseException as exc:  # a worker's error (Tune retries the trial), or the abort of `stop`
            self.error = exc
        finally:
            with contextlib.suppress(Exception):  # the channel is gone if `stop` gave up waiting for this
                self.channel.put(("end", None))

    def next(self) -> tuple[dict[str, Any], ray.train.Checkpoint | None]:
        """The next report and its checkpoint (persisted in the run's storage); raises the run's error if
        it ended without one."""
        while True:
            kind, payload = self.channel.get()
            if kind == "controller":
                self.controller = payload
            elif kind == "report":
                return payload
            else:
                raise self.error or RuntimeError(f"Ray Train run {self.name} ended without a final report")

    def stop(self) -> None:
        """Abort the run if it still runs (releasing its workers and placement group), then clean up."""
        if self.thread.is_alive():
            self._abort()
        self._drain_until(lambda: not self.thread.is_alive(), ABORT_TIMEOUT_S)
        with contextlib.suppress(Exception):
            self.channel.shutdown(force=True)
        _remove_folder(self.storage, self.name)

    def _abort(self) -> None:
        """`TrainController.abort`, as Ctrl-C on a Train driver does: it shuts the worker group down (its
        placement group removed) and exits the controller. The controller may be blocked putting a report
        into the channel: the channel is drained meanwhile."""
        self._drain_until(lambda: self.controller is not None or not self.thread.is_alive(), ABORT_TIMEOUT_S)
        if self.controller is None:
            return
        done = self.controller.abort.remote()
        if not self._drain_until(lambda: bool(ray.wait([done], timeout=0)[0]), ABORT_TIMEOUT_S):
            log.warning("Ray Train run %s did not abort within %.0f s: killing its controller", self.name,
                        ABORT_TIMEOUT_S)
            ray.kill(self.controller, no_restart=True)

    def _drain_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """Take (and drop) what the run puts in the channel until `condition()` holds; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            try:
                kind, payload = self.channel.get(timeout=0.2)
            except (Empty, ray.exceptions.RayActorError):
                continue
            if kind == "controller":
                self.controller = payload
        return True


def _remove_folder(storage: str, name: str) -> None:
    """Delete `storage/name` (a folder or under a URI), as best it can: it only holds the run's scratch."""
    import pyarrow.fs

    base, _, query = storage.partition("?")
    try:
        filesystem, path = pyarrow.fs.FileSystem.from_uri(f"{base.rstrip('/')}/{name}" + (f"?{query}" if query else ""))
        filesystem.delete_dir(path)
    except Exception as exc:  # gone already, or unreachable: nothing to do about it here
        log.debug("could not remove the Train run folder %s/%s: %s", storage, name, exc)


class DistributedTrial(tune.Trainable):
    """The Ray Tune trial of a multi-worker built-in: see the module docstring for why a class.

    Use as `tune.with_resources(tune.with_parameters(DistributedTrial, context=ctx, group=workers),
    tune.PlacementGroupFactory([DRIVER_RESOURCES]))`, with `reuse_actors` off: Tune keeps a reusable trial
    process without stopping it, and its Train run would hold its workers meanwhile.
    """

    def setup(self, config: dict[str, Any], context: TrialContext | None = None,
              group: WorkerGroup | None = None) -> None:
        if context is None or group is None:
            raise ValueError("DistributedTrial needs context= and group= (tune.with_parameters)")
        self.context, self.group = context, group
        self.start: bytes | None = None
        self.run: TrainRun | None = None
        self.latest: ray.train.Checkpoint | None = None

    def step(self) -> dict[str, Any]:
        if self.run is None:
            self.run = TrainRun(self.config, self.context, self.group, start=self.start,
                                name=f"{self.trial_id}-{uuid.uuid4().hex[:8]}")
        metrics, self.latest = self.run.next()
        # the loop's last report: its planned epochs, its own early stop, or divergence
        final = metrics["diverged"] or metrics["early_stopped"] or metrics["epoch"] >= metrics["planned_epochs"]
        return {**metrics, SHOULD_CHECKPOINT: self.latest is not None, DONE: final}

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        """Tune's checkpoint: a copy of the one rank 0 reported last; the run's copy is then deleted."""
        if self.latest is None:
            raise RuntimeError("no checkpoint to save: the Train run has not reported one yet")
        self.latest.to_directory(checkpoint_dir)
        with contextlib.suppress(Exception):
            self.latest.filesystem.delete_dir(self.latest.path)

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        """The next Train run starts from this checkpoint (a retry, or `Tuner.restore`)."""
        if self.run is not None:
            raise RuntimeError("cannot load a checkpoint into a running multi-worker trial")
        self.start = (Path(checkpoint_dir) / CHECKPOINT_FILE).read_bytes()

    def cleanup(self) -> None:
        if self.run is not None:
            self.run.stop()
            self.run = None
