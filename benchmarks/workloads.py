"""Ray Tune function trainables the benchmarks name as `benchmarks.workloads:NAME` (run from the repo root).

Kept free of PyTorch so that what a benchmark measures is tunerd and Ray Tune, not training.
"""
from __future__ import annotations

import json
import math
import os
import signal
import tempfile
from pathlib import Path

from ray import tune

#: an experiment of `trials` one-report trials of `trivial`, 1 CPU each, TensorBoard on: what tunerd itself
#: costs per trial (benchmarks/overhead.py) and how many trials one experiment holds (benchmarks/reliability.py)
TRIVIAL_SPEC = """\
name: {name}
trainable: benchmarks.workloads:trivial
metric: loss
mode: min
space:
  x: {{uniform: [0, 4]}}
search: {{algorithm: random, num_samples: {trials}}}
scheduler: {{name: fifo}}
stop: {{max_epochs: 1}}
resources: {{cpu: 1}}
tensorboard: true
"""


def trivial(config: dict) -> None:
    """One report and nothing else: what a trial costs tunerd and Ray Tune themselves."""
    tune.report({"loss": (config.get("x", 0.0) - 2.0) ** 2, "epoch": 1})


def branin(config: dict) -> None:
    """The Branin-Hoo function (global minimum 0.397887 at three points), one report: a search-quality test
    whose answer is known."""
    x1, x2 = config["x1"], config["x2"]
    a, b, c, r, s, t = 1.0, 5.1 / (4 * math.pi ** 2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    tune.report({"value": a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s, "epoch": 1})


def test_function(config: dict) -> None:
    """One of benchmarks/functions.py's test functions (the config's `problem`), one report."""
    from benchmarks.functions import evaluate

    tune.report({"value": evaluate(config), "epoch": 1})


def faulty(config: dict) -> None:
    """Five checkpointed epochs with one injected fault, chosen by `fault`:
    - `raise`: every attempt raises (a configuration the model cannot take);
    - `sigkill`: the process is killed at epoch 3, once (an OOM killer; a marker file says it happened);
    - `nan`: the loss is NaN from epoch 3 on (a too-high learning rate);
    - `none`: healthy.
    Every attempt is counted in `attempts/<trial key>`, so a benchmark can count the retries Ray made."""
    key = f"{config['fault']}-{config['repeat']}"
    folder = Path(config["attempts"])
    with open(folder / key, "a") as counter:
        counter.write("attempt\n")
    if config["fault"] == "raise":
        raise ValueError(f"injected fault in {key}")
    start = _restored_epoch() + 1
    for epoch in range(start, 6):
        if config["fault"] == "sigkill" and epoch == 3 and not (folder / f"{key}.killed").exists():
            (folder / f"{key}.killed").write_text("killed once")
            os.kill(os.getpid(), signal.SIGKILL)
        loss = float("nan") if config["fault"] == "nan" and epoch >= 3 else 1.0 / epoch
        with tempfile.TemporaryDirectory() as checkpoint:
            (Path(checkpoint) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report({"loss": loss, "epoch": epoch, "start": start},
                        checkpoint=tune.Checkpoint.from_directory(checkpoint))


def _restored_epoch() -> int:
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return 0
    with checkpoint.as_directory() as folder:
        return json.loads((Path(folder) / "state.json").read_text())["epoch"]


#: the faults the soak draws, each with its share of trials (the rest are healthy); `soak_fault` draws from a
#: hash of the trial's id, so a fault is random across trials, the same in every attempt of one trial, and
#: not something the searcher can learn to avoid
SOAK_FAULTS = (("raise", 0.03), ("sigkill", 0.03), ("nan", 0.03), ("hang", 0.03))
#: epochs of a soak trial; the faults strike in epoch 2
SOAK_EPOCHS = 3


def soak_fault(trial_id: str) -> str:
    """The fault the soak trial `trial_id` carries: `none` or one of SOAK_FAULTS."""
    import hashlib

    u = int.from_bytes(hashlib.sha256(trial_id.encode()).digest()[:8], "big") / 2 ** 64
    edge = 0.0
    for fault, share in SOAK_FAULTS:
        edge += share
        if u < edge:
            return fault
    return "none"


def soak(config: dict) -> None:
    """The soak's trial (`benchmarks/reliability.py --soak`): SOAK_EPOCHS checkpointed epochs of a quadratic
    in `x` and `y`, carrying `soak_fault(its trial id)`:
    - `raise`: every attempt raises before its first report;
    - `sigkill`: the process kills itself in epoch 2, once (a marker file remembers);
    - `nan`: the loss is NaN from epoch 2 on;
    - `hang`: epoch 2 blocks for ever, once (tunerd's hang watch must kill it; the retry goes on);
    Every attempt appends a line to `attempts/<trial id>`, so the benchmark can count the attempts Ray made."""
    import threading

    folder = Path(config["attempts"])
    trial_id = tune.get_context().get_trial_id()
    with open(folder / trial_id, "a") as counter:
        counter.write("attempt\n")
    fault = soak_fault(trial_id)
    if fault == "raise":
        raise ValueError(f"injected fault in trial {trial_id}")
    start = _restored_epoch() + 1
    for epoch in range(start, SOAK_EPOCHS + 1):
        marker = folder / f"{trial_id}.{fault}"
        if fault in ("sigkill", "hang") and epoch == 2 and not marker.exists():
            marker.write_text(f"{fault} once")
            if fault == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            threading.Event().wait()  # silent for ever
        healthy = (config["x"] - 2.0) ** 2 + (config["y"] - 1.0) ** 2 + 1.0 / epoch
        loss = float("nan") if fault == "nan" and epoch >= 2 else healthy
        with tempfile.TemporaryDirectory() as checkpoint:
            (Path(checkpoint) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report({"loss": loss, "epoch": epoch, "start": start},
                        checkpoint=tune.Checkpoint.from_directory(checkpoint))
