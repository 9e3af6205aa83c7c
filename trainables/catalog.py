"""What the built-in trainables offer, read without torch: their names, knobs, choices, the metrics they
report and the data sets they load.

tunerd checks an experiment file against this module (`tunerd validate` starts in a fraction of a second);
the torch modules implement what it names, and tests hold the two together.
"""
from __future__ import annotations

from trainables.configs import ENSEMBLE, FAMILY_SPECS
from trainables.data.sources import DATA_KINDS
from trainables.data.spec import DataSpec
from trainables.knobs import KNOB_CHOICES, knob_names

#: built-in trainables: each model family, and ensembles of one
BUILTINS: tuple[str, ...] = (*FAMILY_SPECS, ENSEMBLE)

#: what a built-in's model costs, in every report (measured on the predictor that is exported; see
#: `trainables.cost`): non-zero parameters, the state dict's bytes, median CPU inference ms per sample at batch 1
COST_METRICS = ("params", "model_bytes", "latency_ms")
#: with `export.quantize`, in the last report: the trial's int8 copy's val accuracy and bytes
INT8_METRICS = ("int8_val_accuracy", "int8_bytes")
#: tabular data, every report: the features the model sees (after `select_features` / `pca`)
TABULAR_METRICS = ("n_features",)
#: every key each built-in reports each epoch. On top: an ensemble's `member{i}_train_accuracy`,
#: `member{i}_val_accuracy` (and `member{i}_alpha` when boosting); with k folds `val_accuracy_std`,
#: `val_loss_std` and `fold{i}_val_accuracy`; with `init_from`, in epoch 1, `transfer_loaded` and
#: `transfer_skipped` (tensors per model); on tabular data TABULAR_METRICS; with `prune` > 0, `pruned` (bool:
#: trained under the pruning masks, see `trainables.pruning`). Indices count from 0, as in the state_dict
#: (`members.{i}`).
METRIC_KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "generalization_gap",
               "samples_per_s", "planned_epochs", "diverged", "early_stopped", *COST_METRICS)
#: metrics a built-in can optimise, constrain or stop on (the numbers among what it reports)
SEARCHABLE_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "generalization_gap",
                      *COST_METRICS, *INT8_METRICS, *TABULAR_METRICS)

#: names of the built-in data sets (`data.name`)
DATASETS = tuple(DATA_KINDS)


def require_data_kind(trainable: str, family_name: str, kind: str) -> None:
    """A ValueError unless family `family_name` (the trainable's, or an ensemble's base) learns from `kind` data."""
    kinds = FAMILY_SPECS[family_name].data_kinds
    if kind not in kinds:
        which = f"'{trainable}'" if trainable == family_name else f"'{trainable}' with base '{family_name}'"
        suggest = [name for name, spec in FAMILY_SPECS.items() if kind in spec.data_kinds]
        raise ValueError(f"trainable {which} needs {' or '.join(kinds)} data, but this data set is {kind} "
                         f"(use {' or '.join(suggest)})")


__all__ = ["BUILTINS", "COST_METRICS", "DATASETS", "DATA_KINDS", "DataSpec", "INT8_METRICS", "KNOB_CHOICES",
           "METRIC_KEYS", "SEARCHABLE_METRICS", "TABULAR_METRICS", "knob_names", "require_data_kind"]
