"""Which trainable a spec names: a built-in, or a user's `package.module:function` Ray Tune function trainable."""
from __future__ import annotations

import importlib
import re
from typing import Callable

from trainables.builtin import train_builtin
from trainables.models import ENSEMBLE, FAMILIES
from trainables.validation import did_you_mean

#: built-in trainables, all served by `train_builtin`: each model family, and ensembles of one
BUILTINS: tuple[str, ...] = (*FAMILIES, ENSEMBLE)

_REFERENCE = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<function>[A-Za-z_]\w*)$")


def resolve_trainable(name: str) -> Callable:
    """The function Ray Tune should run for trainable `name`.

    Import problems become ValueErrors that name what is missing, so the spec check can report them
    before any trial starts instead of every trial failing the same way.
    """
    if name in BUILTINS:
        return train_builtin
    if not isinstance(name, str) or ":" not in name:
        raise ValueError(f"trainable {name!r} is neither a built-in ({', '.join(BUILTINS)})"
                         f"{did_you_mean(str(name), BUILTINS)} nor 'package.module:function'")
    match = _REFERENCE.match(name)
    if match is None:
        raise ValueError(f"trainable {name!r} is malformed: expected 'package.module:function' "
                         "(dotted module path, one colon, function name)")
    module_name, function_name = match["module"], match["function"]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(f"{missing}."):  # the module itself, not a dependency
            raise ValueError(f"trainable {name!r}: module {module_name!r} not found "
                             "(is it installed, or on PYTHONPATH?)") from exc
        raise ValueError(f"trainable {name!r}: importing module {module_name!r} failed: {exc}") from exc
    except Exception as exc:  # the user's module raised while importing
        raise ValueError(f"trainable {name!r}: importing module {module_name!r} failed: "
                         f"{type(exc).__name__}: {exc}") from exc
    if not hasattr(module, function_name):
        public = [n for n in dir(module) if not n.startswith("_")]
        raise ValueError(f"trainable {name!r}: module {module_name!r} has no attribute {function_name!r}"
                         f"{did_you_mean(function_name, public)}")
    function = getattr(module, function_name)
    if not callable(function):
        raise ValueError(f"trainable {name!r}: {module_name}.{function_name} is not callable "
                         f"(got {type(function).__name__})")
    return function
