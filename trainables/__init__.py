"""tunerd's built-in trainables: model families (cnn, mlp, rnn), ensembles of them, data, and the one
training loop they all share (cross-validation included).

`train_builtin` is the Ray Tune function trainable; `run_training` is the same loop with reporting and
the starting checkpoint injected, for tests and other runners. A multi-worker trial (`resources.workers`
> 1) runs the same loop data-parallel on Ray Train workers: `trainables.distributed.DistributedTrial`.
"""
from __future__ import annotations

from trainables.builtin import train_builtin
from trainables.context import TrialContext
from trainables.data import SOURCES, Dataset, load_dataset
from trainables.export import evaluate_checkpoint, export_best, load_model
from trainables.knobs import KNOB_CHOICES, knob_names, parse_knobs
from trainables.loop import METRIC_KEYS, SEARCHABLE_METRICS, run_training
from trainables.models import FAMILIES, build_model
from trainables.registry import BUILTINS, resolve_trainable

#: names of the built-in data sets (`data.name`)
DATASETS = tuple(SOURCES)

__all__ = [
    "DATASETS",
    "BUILTINS",
    "FAMILIES",
    "KNOB_CHOICES",
    "METRIC_KEYS",
    "SEARCHABLE_METRICS",
    "Dataset",
    "TrialContext",
    "evaluate_checkpoint",
    "build_model",
    "export_best",
    "knob_names",
    "load_dataset",
    "load_model",
    "parse_knobs",
    "resolve_trainable",
    "run_training",
    "train_builtin",
]
