"""tunerd: distributed hyperparameter tuning on Ray Tune from one YAML file.

`tunerd.load(path)` checks an experiment file, `tunerd.plan(experiment)` says what it will run,
`tunerd.launch(experiment)` runs it, `tunerd.resume(name)` finishes an interrupted one. Names are imported
on first use: `import tunerd` loads neither Ray nor torch.
"""
from __future__ import annotations

from trainables.lazy import lazy_exports

__version__ = "0.1.0"

#: name -> the module that defines it
_EXPORTS = {
    **dict.fromkeys(("launch", "load", "plan", "resume"), "tunerd.api"),
    **dict.fromkeys(("SpecError", "TunerdError", "UsageError"), "tunerd.errors"),
    "RunOptions": "tunerd.options",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = list(_EXPORTS)
