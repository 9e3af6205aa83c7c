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
