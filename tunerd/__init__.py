"""tunerd: distributed hyperparameter tuning on Ray Tune from one YAML file."""
from __future__ import annotations

from tunerd.api import launch, load, plan
from tunerd.errors import SpecError, TunerdError, UsageError

__all__ = ["launch", "load", "plan", "SpecError", "TunerdError", "UsageError"]
__version__ = "0.1.0"
