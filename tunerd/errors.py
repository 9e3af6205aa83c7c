"""Errors tunerd raises on purpose: each carries a message a user can act on (`brief` cuts a value in one short)."""
from __future__ import annotations

from dataclasses import dataclass

from trainables.validation import brief, did_you_mean

__all__ = ["MAX_SHOWN", "Problem", "SpecError", "TunerdError", "UsageError", "brief", "did_you_mean",
           "printable"]

#: how many problems one error lists (a hostile file can hold a million)
MAX_SHOWN = 50


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
        return printable(f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}")


def printable(text: str) -> str:
    """Control characters escaped (`\\x1b`): a key from a hostile file must not drive the user's terminal."""
    return text if text.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class SpecError(UsageError):
    """Every problem found in one experiment file; nothing has run when this is raised."""

    def __init__(self, problems: list[Problem], file: str | None = None) -> None:
        self.problems = list(problems)
        self.file = file
        lines = [p.render(file) for p in self.problems[:MAX_SHOWN]]
        if len(self.problems) > MAX_SHOWN:
            lines.append(f"... and {len(self.problems) - MAX_SHOWN} more problems")
        super().__init__("\n".join(lines))
