"""What a built-in trial needs to know beyond its knobs: the experiment-level settings, fixed per run."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class TrialContext:
    """Experiment settings the runner hands every built-in trial (`tune.with_parameters(..., context=...)`).

    Knobs vary per trial and arrive in Ray's `config`; these do not, so they travel separately and the
    trial config stays exactly what the searcher chose.
    """

    trainable: str
    data: dict[str, Any]
    seed: int = 0
    max_epochs: int = 20
    checkpoint_every: int = 1
    metric: str = "val_accuracy"
    mode: str = "max"
    #: the experiments' storage folder: where `init_from: NAME` finds NAME/best (transfer learning)
    storage: str | None = None
    #: `export.quantize`: the trial's last report also carries its int8 copy's `int8_val_accuracy` and
    #: `int8_bytes`, so a search can aim at the model it will ship
    quantize: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.max_epochs, int) or self.max_epochs < 1:
            raise ValueError(f"max_epochs must be an integer >= 1, got {self.max_epochs!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be an integer >= 1, got {self.checkpoint_every!r}")
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {self.mode!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
