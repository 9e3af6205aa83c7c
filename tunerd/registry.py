"""Backends by name: every search algorithm and every scheduler is one module of its package that declares
itself (`BACKEND = ...`), found here by listing the package. Adding one is adding a module.

Declarations are light (no Ray, no optimisation library at import): spec validation, trial counting and
`tunerd validate`'s plan read them; a backend imports its library only when it builds itself for a run.
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from trainables.validation import did_you_mean


class Named(Protocol):
    name: str


B = TypeVar("B", bound=Named)


class Registry(Generic[B]):
    """The `BACKEND` of each public module of `package` (modules named `_*` and `base` hold shared code)."""

    def __init__(self, package: str, kind: str) -> None:
        self.package = package
        self.kind = kind  # "search algorithm", "scheduler": for messages
        self._found: dict[str, B] | None = None

    def _backends(self) -> dict[str, B]:
        if self._found is None:
            found: dict[str, B] = {}
            package = importlib.import_module(self.package)
            for module in pkgutil.iter_modules(package.__path__):
                if module.name.startswith("_") or module.name == "base":
                    continue
                backend = importlib.import_module(f"{self.package}.{module.name}").BACKEND
                if backend.name in found:
                    raise RuntimeError(f"two {self.kind}s are named {backend.name!r}")
                found[backend.name] = backend
            self._found = dict(sorted(found.items()))
        return self._found

    def names(self) -> tuple[str, ...]:
        return tuple(self._backends())

    def __iter__(self) -> Iterator[B]:
        return iter(self._backends().values())

    def __contains__(self, name: object) -> bool:
        return name in self._backends()

    def get(self, name: str) -> B:
        """The backend `name`; a ValueError listing the others (with a did-you-mean) for an unknown one."""
        backends = self._backends()
        if name not in backends:
            raise ValueError(f"unknown {self.kind} {name!r}{did_you_mean(name, backends)}; "
                             f"one of: {', '.join(backends)}")
        return backends[name]
