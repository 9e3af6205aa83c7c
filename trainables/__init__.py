"""tunerd's built-in trainables: model families (cnn, mlp, rnn), ensembles of them, data, and the one
training loop they all share (cross-validation included).

`train_builtin` is the Ray Tune function trainable; `run_training` is the same loop with reporting and
the starting checkpoint injected, for tests and other runners. A multi-worker trial (`resources.workers`
> 1) runs the same loop data-parallel on Ray Train workers: `trainables.distributed.DistributedTrial`.
What the built-ins accept, without torch: `trainables.catalog`.

Names are imported on first use, so that reading the catalog (what `tunerd validate` does) loads no torch.
"""
from __future__ import annotations

from trainables.lazy import lazy_exports

#: name -> the module that defines it
_EXPORTS = {
    "train_builtin": "trainables.builtin",
    "TrialContext": "trainables.context",
    **dict.fromkeys(("BUILTINS", "DATASETS", "KNOB_CHOICES", "METRIC_KEYS", "SEARCHABLE_METRICS", "knob_names"),
                    "trainables.catalog"),
    **dict.fromkeys(("SOURCES", "Dataset", "load_dataset"), "trainables.data"),
    **dict.fromkeys(("evaluate_checkpoint", "export_best", "load_model"), "trainables.export"),
    "parse_knobs": "trainables.knobs",
    "run_training": "trainables.loop",
    **dict.fromkeys(("FAMILIES", "build_model"), "trainables.models"),
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
