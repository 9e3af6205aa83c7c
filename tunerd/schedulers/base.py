"""What a scheduler (early stopping of trials) declares. A backend is one module of `tunerd/schedulers/`
holding `BACKEND = MyScheduler()`; only `build` may import Ray.

A trial's time is its number of reports (`training_iteration`): one report per epoch for the built-ins,
so rungs, grace periods and `stop.max_epochs` are counted in epochs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from tunerd.errors import Problem

if TYPE_CHECKING:
    from tunerd.spec import ExperimentSpec

TIME_ATTR = "training_iteration"


class Scheduler:
    """One scheduler: its name, the `scheduler:` keys it reads, its checks, and how it builds itself."""

    #: `scheduler.name`
    name: ClassVar[str]
    #: what it is, in a few words (validate's plan, README)
    summary: ClassVar[str]
    #: the `scheduler:` keys it reads (the others are accepted, for `--set scheduler.name=...`, and ignored)
    reads: ClassVar[tuple[str, ...]] = ()

    def check(self, spec: ExperimentSpec) -> list[Problem]:
        settings = spec.scheduler
        if "grace_period" in self.reads and settings.grace_period > spec.stop.max_epochs:
            return [Problem("scheduler.grace_period", f"({settings.grace_period}) exceeds stop.max_epochs "
                                                      f"({spec.stop.max_epochs})")]
        return []

    def describe(self, spec: ExperimentSpec) -> str:
        """The plan's line: the name and the settings it reads."""
        settings = [f"{key} {getattr(spec.scheduler, key):g}" for key in self.reads]
        if "grace_period" in self.reads:
            settings.append(f"max_t {spec.stop.max_epochs}")
        if settings and not spec.goal().is_plain:
            settings.append("trials compared by constraint domination and non-dominated sorting")
        return f"{self.name} ({', '.join(settings)})" if settings else self.name

    def build(self, spec: ExperimentSpec) -> Any:
        """Ray Tune's TrialScheduler for the run."""
        raise NotImplementedError
