"""Shared helpers for the trainables tests: a recording reporter and small trial contexts."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from trainables import TrialContext


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """These models are tiny: one intra-op thread is fastest, and steady when other jobs share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Recorder:
    """A `report` for `run_training` that keeps every metrics dict and a copy of every checkpoint folder."""

    def __init__(self, root: Path, stop_after: int | None = None) -> None:
        self.root = root
        self.stop_after = stop_after
        self.reports: list[dict[str, Any]] = []
        self.checkpoints: dict[int, Path] = {}

    def __call__(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint_dir is not None:
            copy = self.root / f"epoch-{metrics['epoch']}"
            shutil.copytree(checkpoint_dir, copy)
            self.checkpoints[metrics["epoch"]] = copy
        if self.stop_after is not None and metrics["epoch"] >= self.stop_after:
            raise KeyboardInterrupt("simulated crash")  # as if the worker died after persisting

    @property
    def last(self) -> dict[str, Any]:
        return self.reports[-1]


@pytest.fixture
def new_recorder(tmp_path: Path):
    """`new_recorder(stop_after=None)`: a fresh Recorder with its own checkpoint folder."""
    count = iter(range(1000))
    return lambda stop_after=None: Recorder(tmp_path / f"run-{next(count)}", stop_after)


@pytest.fixture
def recorder(new_recorder) -> Recorder:
    return new_recorder()


@pytest.fixture
def trial_context():
    """`trial_context(trainable="mlp", data="wine", **TrialContext fields)` with max_epochs 2 by default;
    `data` is a data set's name, or a mapping of `data:` keys over the defaults."""
    def make(trainable: str = "mlp", data: str | dict[str, Any] = "wine", **overrides: Any) -> TrialContext:
        settings: dict[str, Any] = {"max_epochs": 2, **overrides}
        spec = {"name": data} if isinstance(data, str) else data
        return TrialContext(trainable=trainable, data={"val_fraction": 0.2, "test_fraction": 0.2, "folds": 0, **spec},
                            **settings)
    return make


@pytest.fixture
def small_text() -> tuple[dict[str, Any], dict[str, Any]]:
    """`(data, knobs)`: a slice of the built-in text set and rnn knobs to match, for a text trial in about a second."""
    return {"name": "sentiment", "train_size": 300}, {"vocab_size": 500, "max_len": 24, "embedding_dim": 16,
                                                      "hidden_size": 16}
