"""Training throughput: an epoch of `cnn`, `mlp` and `rnn` inside tunerd against a hand-written PyTorch loop.

Target: tunerd's shared training loop (`trainables/loop.py`) trains an epoch at >= 0.95x the throughput of
the plainest fast PyTorch loop over the same model, data, batch size, optimizer and torch threads.

- **tunerd's side** is `loop.run_training`, the function every built-in trial runs
  (`builtin.train_builtin` adds only the thread count and Ray's checkpoint hand-over around it), called in
  this process with the `TrialContext` a trial gets. What is timed is each call of `loop.train_epoch`, the
  training pass of an epoch (its shuffled batches, the step, and the running train loss/accuracy every trial
  reports), by the wall clock around the call: `run_training` looks the function up in its module, so
  wrapping it times the trial's own code path without changing it. The validation pass and the checkpoint
  that follow each epoch are not training and have no counterpart in a bare loop; their time is recorded
  (`rest_s`) but not compared. Why not the epoch times a Ray trial reports: a trial runs in another process,
  so its epochs could not alternate one by one with the hand-written loop's on the same core; on this shared
  2-core machine, anything but strict alternation measures the neighbours' load.
- **The hand-written side** is a model from `trainables.models.build_model` built the same way (same knobs,
  same seed) with the same optimizer, stepping through `torch.randperm` batches of the in-memory training
  tensors: `zero_grad`, forward, `cross_entropy`, `backward`, `step`, nothing else (the rnn's model counts
  its sequence lengths itself).
- **Alternation:** the report tunerd's loop makes after each epoch runs one hand-written epoch, so the two
  sides take turns epoch by epoch on the same threads. The first epoch of each side is warm-up and left
  out; the figure is median(hand-written epoch time) / median(tunerd training-pass time), i.e. tunerd's
  throughput as a multiple of the hand-written loop's.

Data: `mnist` (3,000 training images of 28x28) for cnn and mlp, `sentiment` (22k tweets, max_len 40,
vocabulary 10,000, as `search_spaces/rnn_sentiment.yaml`) for rnn; every other knob at its default
(adam, lr 1e-3, no regularisation, no augmentation). One torch thread by default: what a trial with
`resources.cpu: 1` (the default) trains with.

Timing runs must not overlap one another: run it under the benchmarks' lock,

    flock /tmp/tunerd-bench.lock python benchmarks/throughput.py            # ~3 minutes
    flock /tmp/tunerd-bench.lock python benchmarks/throughput.py --quick    # ~1 minute, fewer epochs
    flock /tmp/tunerd-bench.lock python benchmarks/throughput.py --threads 2 --only cnn

Writes `benchmarks/results/throughput.json`; `run(quick)` returns the rows for `benchmarks/run_all.py`.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/throughput.py` from anywhere
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from trainables import loop  # noqa: E402
from trainables.context import TrialContext  # noqa: E402
from trainables.data import load_dataset  # noqa: E402
from trainables.files import write_atomic  # noqa: E402
from trainables.knobs import parse_knobs  # noqa: E402
from trainables.models import build_model  # noqa: E402
from trainables.optim import make_optimizer  # noqa: E402

OUTPUT = ROOT / "benchmarks" / "results" / "throughput.json"
THRESHOLD = 0.95
SEED = 0


@dataclass(frozen=True)
class Case:
    """One model family on its representative data; `epochs` / `quick_epochs` are measured pairs after the
    warm-up pair (the mlp's epochs are short, so it gets more of them to beat the noise)."""

    family: str
    data: dict[str, Any]
    config: dict[str, Any]
    epochs: int
    quick_epochs: int


CASES = (
    Case("cnn", {"name": "mnist"}, {"batch_size": 64}, epochs=8, quick_epochs=3),
    Case("mlp", {"name": "mnist"}, {"batch_size": 64}, epochs=40, quick_epochs=10),
    Case("rnn", {"name": "sentiment"}, {"batch_size": 128, "vocab_size": 10000, "max_len": 40},
         epochs=6, quick_epochs=2),
)


@dataclass
class Timings:
    tunerd: list[float] = field(default_factory=list)  # loop.train_epoch, per epoch
    rest: list[float] = field(default_factory=list)  # the rest of tunerd's epoch: validation, metrics, checkpoint
    hand: list[float] = field(default_factory=list)


class HandLoop:
    """The plainest fast PyTorch loop over the same model, built the same way, and the same optimizer."""

    def __init__(self, case: Case) -> None:
        knobs = parse_knobs(case.family, case.config)
        data = load_dataset(case.data, SEED, **knobs.model.data_options())
        torch.manual_seed(SEED)
        self.model = build_model(case.family, knobs.model, data.input_shape, data.n_classes)
        settings = knobs.training
        self.optimizer = make_optimizer(settings.optimizer, self.model.parameters(), settings.lr, settings.momentum)
        self.x, self.y, self.batch_size = data.x_train, data.y_train, settings.batch_size
        self.shuffle = torch.Generator().manual_seed(SEED)

    def epoch(self) -> float:
        started = time.perf_counter()
        model, optimizer, x, y = self.model, self.optimizer, self.x, self.y
        model.train()
        for index in torch.randperm(len(y), generator=self.shuffle).split(self.batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[index]), y[index])
            loss.backward()
            optimizer.step()
        return time.perf_counter() - started


def measure(case: Case, pairs: int) -> Timings:
    """`pairs` + 1 epochs of each side, alternating (tunerd's first); the first pair is warm-up."""
    hand = HandLoop(case)  # loads the data first: the source is cached, so tunerd's loop reuses it
    timings = Timings()
    context = TrialContext(trainable=case.family, data=case.data, seed=SEED, max_epochs=pairs + 1)
    real_train_epoch: Callable[..., Any] = loop.train_epoch
    marks: dict[str, float] = {}

    def timed_train_epoch(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        stats = real_train_epoch(*args, **kwargs)
        marks["trained"] = time.perf_counter()
        timings.tunerd.append(marks["trained"] - started)
        return stats

    def report(metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        timings.rest.append(time.perf_counter() - marks["trained"])
        timings.hand.append(hand.epoch())

    loop.train_epoch = timed_train_epoch
    try:
        loop.run_training(dict(case.config), context, report=report)
    finally:
        loop.train_epoch = real_train_epoch
    return timings


def run(quick: bool = False, *, threads: int = 1, only: tuple[str, ...] = (),
        output: Path | None = OUTPUT) -> list[dict[str, Any]]:
    """Measure every case (or those in `only`); print each figure with PASS/FAIL, write the JSON report
    (unless `output` is None) and return the rows."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    rows, cases = [], {}
    try:
        for case in CASES:
            if only and case.family not in only:
                continue
            pairs = case.quick_epochs if quick else case.epochs
            timings = measure(case, pairs)
            tunerd, hand = statistics.median(timings.tunerd[1:]), statistics.median(timings.hand[1:])
            ratio = hand / tunerd
            name = f"{case.family} ({case.data['name']})"
            row = {"target": f"throughput {name}: tunerd epoch vs hand-written PyTorch", "measured": round(ratio, 4),
                   "threshold": THRESHOLD, "unit": "x hand-written loop's throughput", "pass": ratio >= THRESHOLD}
            rows.append(row)
            cases[case.family] = {
                "data": case.data, "config": case.config, "measured_epochs": pairs,
                "tunerd_train_epoch_s_median": round(tunerd, 4), "hand_epoch_s_median": round(hand, 4),
                "tunerd_rest_of_epoch_s_median": round(statistics.median(timings.rest[1:]), 4),
                "tunerd_train_epoch_s": [round(t, 4) for t in timings.tunerd],
                "hand_epoch_s": [round(t, 4) for t in timings.hand],
                "ratio": round(ratio, 4),
            }
            print(f"{row['target']}: {ratio:.3f}x (tunerd {tunerd:.4f} s, hand-written {hand:.4f} s per epoch, "
                  f"median of {pairs}; validation + checkpoint after it "
                  f"{cases[case.family]['tunerd_rest_of_epoch_s_median']:.4f} s) "
                  f"{'PASS' if row['pass'] else 'FAIL'} (>= {THRESHOLD})", flush=True)
    finally:
        torch.set_num_threads(previous_threads)
    if output is not None:
        report = {"benchmark": "throughput", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "machine": f"{platform.machine()}, {platform.processor() or platform.system()}, "
                             f"{_cpu_count()} CPUs", "torch": torch.__version__, "threads": threads,
                  "quick": quick, "cases": cases, "rows": rows}
        write_atomic(Path(output), json.dumps(report, indent=2) + "\n")  # a reader never sees half a report
        print(f"written: {output}")
    return rows


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs: a short look")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on both sides (default 1, a "
                                                               "trial's with resources.cpu 1)")
    parser.add_argument("--only", action="append", choices=[c.family for c in CASES], default=[],
                        help="measure only this family (repeatable)")
    parser.add_argument("--output", default=str(OUTPUT), help=f"the JSON report (default {OUTPUT})")
    args = parser.parse_args(argv)
    rows = run(args.quick, threads=args.threads, only=tuple(args.only), output=Path(args.output))
    return 0 if all(row["pass"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
