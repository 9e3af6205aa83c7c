"""Errors tunerd raises on purpose: each carries a message a user can act on."""
from __future__ import annotations

from dataclasses import dataclass


class TunerdError(Exception):
    """A failure the user can understand without a traceback (the CLI exits 1)."""


class UsageError(TunerdError):
    """Bad usage: a wrong option, an experiment name that already exists (the CLI exits 2)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an experiment file, located by key path (and line where known)."""

    path: str
    message: str
    line: int | None = None

    def render(self, file: str | None) -> str:
        where = file or "<spec>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(UsageError):
    """Every problem found in one experiment file; nothing has run when this is raised."""

    def __init__(self, problems: list[Problem], file: str | None = None) -> None:
        self.problems = list(problems)
        self.file = file
        super().__init__("\n".join(p.render(file) for p in self.problems))
