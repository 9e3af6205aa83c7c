"""What a search algorithm declares, and the checks every algorithm gets from its declaration.

A backend is one module of `tunerd/searchers/` holding `BACKEND = MyAlgorithm()`, a subclass of
`SearchAlgorithm`. Call order for a run: spec validation reads `accepts` and `options` and calls
`check`; the plan and the launch header read `trial_count` and `describe`; the runner calls `build` once,
the only method that may import Ray or the algorithm's library.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from tunerd.errors import Problem
from tunerd.space import Choice, Distribution, Grid, grid_size, iter_nodes

if TYPE_CHECKING:
    from tunerd.spec import Experiment


class NoOptions(BaseModel):
    """The keys an algorithm adds under `search:` (none); a backend with its own subclasses this."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


@dataclass(frozen=True, kw_only=True)
class Accepts:
    """What an algorithm can search; validation refuses the rest, naming the key and the alternatives."""

    #: numeric distributions (uniform, loguniform, randint, ...)
    continuous: bool = True
    #: `grid:` axes, every value tried and crossed with the samples
    grid_axes: bool = False
    #: a `choice` of plain values (categorical parameters)
    categorical: bool = True
    #: a `choice` whose options are mappings (conditional sub-spaces)
    conditional: bool = True
    #: an initial point that sets a value inside a conditional choice
    conditional_initial_points: bool = True


class SearchAlgorithm:
    """One search backend: its name, what it accepts, its own options, and how it builds itself."""

    #: `search.algorithm`
    name: ClassVar[str]
    #: what it is, in a few words (validate's plan, README)
    summary: ClassVar[str]
    accepts: ClassVar[Accepts] = Accepts()
    #: its own keys under `search:`
    options: ClassVar[type[BaseModel]] = NoOptions
    #: suggestions depend on earlier results: the runner lets such a searcher fill every free slot at once
    #: (Ray Tune allows an uncapped Searcher one pending trial, see `tunerd.resources.max_concurrent`)
    learns: ClassVar[bool] = False
    #: it takes earlier trials as observations (`search.warm_start`, `Experiment.warm_start`) through its
    #: library's own API, without running them again
    warm_starts: ClassVar[bool] = False
    #: every `choice` is a grid axis too (grid search)
    choices_are_grid: ClassVar[bool] = False
    #: `search.num_samples` when the file leaves it out
    default_num_samples: ClassVar[int] = 40
    #: it searches several objectives at once (`objectives:`); the others optimise one
    multi_objective: ClassVar[bool] = False

    def check(self, space: dict[str, Any], initial_points: list[dict[str, Any]]) -> list[Problem]:
        """Problems with the space or the initial points for this algorithm (what `accepts` refuses)."""
        problems = []
        for node in iter_nodes(space):
            if isinstance(node, Distribution) and not self.accepts.continuous:
                problems.append(Problem(node.path, f"{self.name} search needs discrete values: use choice or grid, "
                                                   "or another search.algorithm"))
            elif isinstance(node, Grid) and not self.accepts.grid_axes:
                problems.append(Problem(node.path, f"{self.name} cannot search a grid axis: use choice, or "
                                                   "search.algorithm grid/random"))
            elif isinstance(node, Choice) and len(node.options) > 1:
                conditional = any(isinstance(option, dict) for option in node.options)
                if conditional and not self.accepts.conditional:
                    problems.append(Problem(node.path, f"{self.name} cannot search a conditional choice (options "
                                                       "that are mappings): flatten it, or use another "
                                                       "search.algorithm"))
                elif not conditional and not self.accepts.categorical:
                    problems.append(Problem(node.path, f"{self.name} searches numbers only, not a choice: fix it "
                                                       "(a constant), or use another search.algorithm (tpe, gp)"))
        if not self.accepts.conditional_initial_points:
            for i, point in enumerate(initial_points):
                for key, value in point.items():
                    if isinstance(space.get(key), Choice) and isinstance(value, dict):
                        problems.append(Problem(f"search.initial_points[{i}].{key}",
                                                f"{self.name} cannot start inside a conditional choice; use an "
                                                "algorithm that can (hyperopt, bayesopt), or leave it out"))
        return problems

    def resolve(self, space: dict[str, Any], num_samples: int | None, *,
                objectives: int = 1) -> tuple[SearchAlgorithm, str]:
        """The backend that runs, and why: itself (`auto` picks another from the space, the budget and the
        number of objectives)."""
        return self, ""

    def trial_count(self, space: dict[str, Any], num_samples: int) -> int:
        """How many trials `num_samples` means for this space (grid axes multiply it)."""
        if self.accepts.grid_axes:
            return num_samples * grid_size(space, choices_are_grid=self.choices_are_grid)
        return num_samples

    def describe(self, options: BaseModel) -> str:
        """One line for the plan: the name, what it is, and its options."""
        settings = ", ".join(f"{key} {value}" for key, value in options.model_dump().items() if value is not None)
        return f"{self.name} ({self.summary}{'; ' + settings if settings else ''})"

    def build(self, experiment: Experiment, *, max_concurrent: int | None) -> tuple[Any, dict[str, Any]]:
        """Ray Tune's search algorithm for the run, and the `param_space` the Tuner gets with it (empty when the
        searcher returns whole configurations itself). `max_concurrent`: the cap on trials at once, if any."""
        raise NotImplementedError
