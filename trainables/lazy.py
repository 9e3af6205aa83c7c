"""Names a package exports but imports on first use (PEP 562), so that importing the package is cheap:
`trainables` and `tunerd` load neither torch nor Ray until a name that needs them is used."""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `exports` maps each name to the module that defines it."""
    def getattr_(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return getattr_
