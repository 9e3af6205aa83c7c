"""Every knob the built-ins accept, as typed config dataclasses, and the names their choices take.

Nothing here imports torch: `tunerd validate` checks a file against these fields without loading a model
library. The torch modules implement what is named here (`models/`, `optim.py`) and a test holds each
name table equal to its implementation's keys.

A field is a knob: its name, type, default and rule (`__post_init__`). `TrainingConfig` holds the shared
loop's knobs, `ModelConfig` the architecture knobs every family honours, each family config adds its own,
and `EnsembleConfig` holds the `ensemble` built-in's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trainables.validation import require, require_choice

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu")
INITS = ("xavier", "kaiming", "default")
#: `adamw` keeps torch's default decoupled weight decay (0.01); the `l2` knob is a separate loss penalty
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES = ("none", "cosine", "step")
CELLS = ("lstm", "gru")
#: the built-in trainable that combines several models of one family (its `base`)
ENSEMBLE = "ensemble"
METHODS = ("bagging", "boosting")
BASES = ("cnn", "mlp", "rnn")
#: the most of a model's weights `prune` may zero: beyond it too few are left to fine-tune
MAX_PRUNE = 0.95
#: knobs only tabular data takes (fitted on the training split: `trainables.features`); the spec checker
#: rejects them for image and text data, and a trial on such data stops at its start
TABULAR_KNOBS = ("select_features", "pca")


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """The knobs of the shared loop (optimisation, regularisation by penalty, stopping)."""

    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    batch_size: int = 64
    epochs: int | None = None
    l1: float = 0.0
    l2: float = 0.0
    grad_clip: float = 0.0
    lr_schedule: str = "none"
    early_stopping_patience: int = 0
    #: strength of `trainables.augment.augment_batch`, applied to every training batch (0 = off)
    augment: float = 0.0
    #: transfer learning: an experiment name, export or checkpoint folder whose matching tensors start the model
    init_from: str | None = None
    #: train only the classifier head (`features` frozen, their batch norm in inference mode); meant for
    #: `init_from`, without which the features stay as randomly initialised (a random-features baseline)
    freeze_features: bool = False
    #: mixed precision (float16 autocast + GradScaler): None (the default) = on when the trial trains on
    #: CUDA; false = off; on the CPU it has no effect either way (`optim.amp_enabled`)
    amp: bool | None = None
    #: the fraction of each model's weights zeroed by global magnitude pruning before its last fine-tune
    #: epochs (`trainables.pruning`); 0 = off
    prune: float = 0.0

    def __post_init__(self) -> None:
        require(self.lr > 0, "lr", self.lr, "must be > 0")
        require_choice("optimizer", self.optimizer, OPTIMIZERS)
        require(0.0 <= self.momentum < 1.0, "momentum", self.momentum, "must be in [0, 1)")
        require(self.batch_size >= 1, "batch_size", self.batch_size, "must be >= 1")
        require(self.epochs is None or self.epochs >= 1, "epochs", self.epochs, "must be >= 1")
        require(self.l1 >= 0, "l1", self.l1, "must be >= 0")
        require(self.l2 >= 0, "l2", self.l2, "must be >= 0")
        require(self.grad_clip >= 0, "grad_clip", self.grad_clip, "must be >= 0 (0 = off)")
        require_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        require(self.early_stopping_patience >= 0, "early_stopping_patience", self.early_stopping_patience,
                "must be >= 0 (0 = off)")
        require(self.augment >= 0, "augment", self.augment, "must be >= 0 (0 = off)")
        require(self.init_from is None or self.init_from.strip() != "", "init_from", self.init_from,
                "must name an experiment or a model folder (or be null)")
        require(0.0 <= self.prune <= MAX_PRUNE, "prune", self.prune, f"must be in [0, {MAX_PRUNE}] (0 = off)")

    def planned_epochs(self, max_epochs: int) -> int:
        """`epochs` when the space sets it, else the experiment's cap, and never more than the cap."""
        return min(self.epochs or max_epochs, max_epochs)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Knobs every family honours. Family configs subclass this and add their own fields (= their knobs)."""

    dropout: float = 0.0
    batch_norm: bool = False
    activation: str = "relu"
    init: str = "default"

    def __post_init__(self) -> None:
        require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "must be in [0, 1)")
        require_choice("activation", self.activation, ACTIVATIONS)
        require_choice("init", self.init, INITS)

    def data_options(self) -> dict[str, Any]:
        """Knobs that shape the data as well as the model (`load_dataset` keywords): none but the rnn's."""
        return {}

    def n_features(self, width: int) -> int:
        """How many of `width` input features the network sees: all of them but for the mlp's TABULAR_KNOBS."""
        return width


@dataclass(frozen=True, kw_only=True)
class CNNConfig(ModelConfig):
    conv_layers: int = 2
    filters: int = 32
    kernel_size: int = 3
    dense_units: int = 128

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.conv_layers >= 1, "conv_layers", self.conv_layers, "must be >= 1")
        require(self.filters >= 1, "filters", self.filters, "must be >= 1")
        require(self.kernel_size >= 1, "kernel_size", self.kernel_size, "must be >= 1")
        require(self.dense_units >= 1, "dense_units", self.dense_units, "must be >= 1")


@dataclass(frozen=True, kw_only=True)
class MLPConfig(ModelConfig):
    """`select_features` (the k features of highest mutual information with the label) and then `pca`
    (that many principal components) shrink tabular input before the first layer; null = off."""

    hidden_layers: int = 2
    units: int = 128
    select_features: int | None = None
    pca: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.hidden_layers >= 0, "hidden_layers", self.hidden_layers, "must be >= 0")
        require(self.units >= 1, "units", self.units, "must be >= 1")
        require(self.select_features is None or self.select_features >= 1, "select_features", self.select_features,
                "must be >= 1 (null = off)")
        require(self.pca is None or self.pca >= 1, "pca", self.pca, "must be >= 1 (null = off)")

    def n_features(self, width: int) -> int:
        return self.pca or self.select_features or width


@dataclass(frozen=True, kw_only=True)
class RNNConfig(ModelConfig):
    """`vocab_size` and `max_len` also shape the data: they are passed to `load_dataset`."""

    cell: str = "lstm"
    embedding_dim: int = 64
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    vocab_size: int = 20000
    max_len: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        require_choice("cell", self.cell, CELLS)
        require(self.embedding_dim >= 1, "embedding_dim", self.embedding_dim, "must be >= 1")
        require(self.hidden_size >= 1, "hidden_size", self.hidden_size, "must be >= 1")
        require(self.num_layers >= 1, "num_layers", self.num_layers, "must be >= 1")
        require(self.vocab_size >= 3, "vocab_size", self.vocab_size, "must be >= 3 (<pad>, <unk> and a word)")
        require(self.max_len >= 1, "max_len", self.max_len, "must be >= 1")

    def data_options(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "max_len": self.max_len}


@dataclass(frozen=True, kw_only=True)
class EnsembleConfig:
    """The `ensemble` built-in's own knobs; its members' architecture is the base family's knobs.

    bagging: member m trains on a bootstrap sample (drawn with replacement, seeded per member) of
    `sample_fraction` x the training rows. boosting: SAMME with per-sample weights (see `loop.boost`); each
    member trains on `sample_fraction` of the rows drawn without replacement (all of them at 1.0).
    """

    method: str = "bagging"
    members: int = 5
    base: str = "mlp"
    sample_fraction: float = 1.0

    def __post_init__(self) -> None:
        require_choice("method", self.method, METHODS)
        require(self.members >= 1, "members", self.members, "must be >= 1")
        require_choice("base", self.base, BASES)
        require(0.0 < self.sample_fraction <= 1.0, "sample_fraction", self.sample_fraction, "must be in (0, 1]")


@dataclass(frozen=True)
class FamilySpec:
    """What a model family is without its network: its knobs and the data it learns from."""

    config: type[ModelConfig]
    #: the `Dataset.kind`s the family can learn from
    data_kinds: tuple[str, ...]


FAMILY_SPECS: dict[str, FamilySpec] = {
    "cnn": FamilySpec(CNNConfig, ("image",)),
    "mlp": FamilySpec(MLPConfig, ("image", "tabular")),
    "rnn": FamilySpec(RNNConfig, ("text",)),
}
