"""The experiment file: its schema, and complete validation into an `Experiment` the rest of tunerd trusts.

Everything about a file is checked here, once; every problem is collected (key path, rule, value, file
line) before anything runs. What each search algorithm and scheduler accepts is read from its registry
entry (`tunerd.searchers`, `tunerd.schedulers`), what the built-in trainables accept from
`trainables.catalog`; a user's own data file is read and checked too. Nothing here imports torch or Ray.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from trainables.validation import pydantic_problems
from tunerd import space as spacelib
from tunerd.errors import Problem, SpecError, UsageError, brief, did_you_mean
from tunerd.objectives import Constraint, Goal, Objective
from tunerd.schedulers import SCHEDULERS, Scheduler
from tunerd.searchers import ALGORITHMS, NoOptions, SearchAlgorithm
from tunerd.storage import DEFAULT_STORAGE, resolve_storage
from tunerd.trainable import TRAINABLE_REFERENCE, is_reference
from tunerd.yamlfile import YamlProblem, apply_overrides, parse_yaml

if TYPE_CHECKING:
    from tunerd.warmstart import WarmStart

#: experiment names: a folder name in the storage that cannot escape it
EXPERIMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
#: what the file says when it leaves `search.algorithm` out: with one objective (auto did not beat it on the
#: mnist benchmark, README "Search against the peers"), and with several (hyperopt optimises one)
DEFAULT_ALGORITHM = "hyperopt"
DEFAULT_MULTI_OBJECTIVE_ALGORITHM = "auto"


# ----------------------------------------------------------------------------------------------------------
# The schema: one frozen, strict model per section; defaults are SPEC §1's.


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


def _registered(registry: Any, *, optional: bool = False) -> Callable[[str | None], str | None]:
    def check(name: str | None) -> str | None:
        if optional and name is None:
            return name
        if name not in registry:
            names = registry.names()
            raise ValueError(f"must be one of {', '.join(names)}; got {brief(name)}{did_you_mean(name, names)}")
        return name
    return check


class SearchSpec(_Section):
    """The keys every algorithm shares; an algorithm's own keys (its `options`) are the extra ones."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, allow_inf_nan=False)
    #: None: DEFAULT_ALGORITHM, or with several objectives DEFAULT_MULTI_OBJECTIVE_ALGORITHM (set by `validate`)
    algorithm: str | None = None
    num_samples: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    initial_points: list[dict[str, Any]] = []
    #: earlier experiments (`NAME`, or `STORAGE/NAME`) whose trials enter the search as observations
    #: (`tunerd.warmstart`)
    warm_start: list[str] = []

    _known_algorithm = field_validator("algorithm")(_registered(ALGORITHMS, optional=True))


class SchedulerSpec(_Section):
    name: str = "asha"
    grace_period: int = Field(2, ge=1)
    reduction_factor: float = Field(3, gt=1)

    _known_scheduler = field_validator("name")(_registered(SCHEDULERS))


class StopSpec(_Section):
    max_epochs: int = Field(20, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    target: float | None = None


class ResourcesSpec(_Section):
    cpu: float = Field(1, gt=0)
    gpu: float = Field(0, ge=0)
    workers: int = Field(1, ge=1)


class CheckpointSpec(_Section):
    every: int = Field(1, ge=1)
    keep: int = Field(2, ge=1)


class FailuresSpec(_Section):
    max_retries: int = Field(2, ge=0)
    #: the first N trials all fail alike before any report: stop the experiment (0 = off; `tunerd.failfast`)
    fail_fast: int = Field(3, ge=0)
    #: a running trial silent this long is killed and retried (`tunerd.hangs`): seconds, `auto`, or null (off)
    hang_timeout_s: Any = "auto"

    @field_validator("hang_timeout_s")
    @classmethod
    def _seconds_or_auto(cls, value: Any) -> float | str | None:
        if value is None or value == "auto":
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf"):
            return float(value)
        raise ValueError(f"must be auto, a number of seconds > 0, or null (off); got {brief(value)}")


class ExportSpec(_Section):
    quantize: bool = False


class ObjectiveSpec(_Section):
    metric: str = Field(min_length=1)
    mode: Literal["max", "min"]


class BoundSpec(_Section):
    """A constraint on one metric: `{max: V}`, `{min: V}` or both."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> BoundSpec:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is above max ({self.max:g})")
        return self


class SelectSpec(_Section):
    #: the objective whose best feasible trial becomes `best/`
    objective: str = Field(min_length=1)


class ExperimentSpec(_Section):
    name: str
    trainable: str = Field(min_length=1)
    #: handed to the trainable: the built-ins read it as `trainables.catalog.DataSpec` (checked here), a
    #: user's function gets the mapping as written
    data: dict[str, Any] = {}
    #: one objective; with `objectives`, these are the `select` objective's (set by `validate`)
    metric: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"
    #: several objectives at once (a Pareto search), instead of metric/mode
    objectives: list[ObjectiveSpec] | None = Field(None, min_length=1)
    constraints: dict[str, BoundSpec] = {}
    select: SelectSpec | None = None
    seed: int = Field(0, ge=0, le=2**32 - 1)
    space: dict[str, Any]
    search: SearchSpec = SearchSpec()
    scheduler: SchedulerSpec = SchedulerSpec()
    stop: StopSpec = StopSpec()
    resources: ResourcesSpec = ResourcesSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    failures: FailuresSpec = FailuresSpec()
    storage: str = Field(DEFAULT_STORAGE, min_length=1)
    tensorboard: bool = True
    export: ExportSpec = ExportSpec()

    def goal(self) -> Goal:
        """What the experiment optimises (checked by `validate`: objectives distinct, `select` one of them)."""
        objectives = [Objective(o.metric, o.mode) for o in self.objectives or []] or [Objective(self.metric, self.mode)]
        constraints = tuple(Constraint(metric, bound.min, bound.max) for metric, bound in self.constraints.items())
        return Goal(tuple(objectives), constraints, self.metric)

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if not EXPERIMENT_NAME.fullmatch(name):
            raise ValueError("must start with a letter or digit and hold only letters, digits, '_', '.', '-' "
                             f"(at most 128), got {brief(name)}")
        return name


#: the model of each mapping of the file, by key path (for "unknown key" messages)
SECTIONS: dict[str, type[BaseModel]] = {"": ExperimentSpec, **{
    name: info.annotation for name, info in ExperimentSpec.model_fields.items()
    if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)}}


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: the typed spec, the parsed space tree, the backends it runs with, and where
    it came from."""

    spec: ExperimentSpec
    space: dict[str, Any]
    raw: dict[str, Any]
    file: str | None = None
    #: the `data:` a trial gets: the built-ins' checked `trainables.catalog.DataSpec`, or for a user's trainable
    #: the mapping (see `ExperimentSpec.data`)
    data: Any = None
    #: the search algorithm that runs (the one `auto` picked) and its own options (`search:` keys beyond the
    #: shared ones); `chosen_because`: why `auto` picked it ("" when the file named it)
    algorithm: SearchAlgorithm = field(default_factory=lambda: ALGORITHMS.get(DEFAULT_ALGORITHM))
    search_options: BaseModel = field(default_factory=NoOptions)
    chosen_because: str = ""
    scheduler: Scheduler = field(default_factory=lambda: SCHEDULERS.get("asha"))
    #: what the file says that this run ignores (printed by `validate` and `launch`)
    warnings: tuple[str, ...] = ()
    #: the earlier trials `search.warm_start` names, mapped onto this space (`tunerd.warmstart`)
    warm_start: WarmStart | None = None

    @property
    def storage(self) -> str:
        return self.spec.storage

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_builtin(self) -> bool:
        return not is_reference(self.spec.trainable)

    @property
    def num_samples(self) -> int:
        """Ray Tune's num_samples: grid repeats for grid search, else trials (before grid axes). A grid `auto`
        picked because it fits the budget is tried once."""
        given = self.spec.search.num_samples
        if self.chosen_because and self.algorithm.name == "grid":
            return 1
        return self.algorithm.default_num_samples if given is None else given

    @property
    def trial_count(self) -> int:
        return self.algorithm.trial_count(self.space, self.num_samples)

    def samples_for(self, trials: int) -> int:
        """The `num_samples` that makes `trials` more trials (`tunerd resume --extend`); a UsageError where no
        number does: a grid search has tried every point of its grid, and a random search with grid axes
        makes a whole grid of trials per sample."""
        if self.algorithm.choices_are_grid:
            raise UsageError(f"--extend: {self.algorithm_label} search has tried its whole grid; more trials "
                             "would repeat its points: launch a new experiment with a finer grid, or search "
                             "with random, hyperopt, tpe or gp")
        per_sample = self.algorithm.trial_count(self.space, 1)
        if trials % per_sample:
            raise UsageError(f"--extend {trials}: each sample of this space is a grid of {per_sample} trials; "
                             f"extend by a multiple of {per_sample}")
        return trials // per_sample

    @property
    def algorithm_label(self) -> str:
        """`gp`, or `auto -> gp` when auto picked it (the launch header)."""
        return f"auto -> {self.algorithm.name}" if self.chosen_because else self.algorithm.name

    def algorithm_record(self) -> dict[str, Any]:
        """What `summary.json` says of the search algorithm: its name, and when `auto` picked it, why."""
        chosen = {"chosen_by": "auto", "why": self.chosen_because} if self.chosen_because else {}
        return {"name": self.algorithm.name, **chosen}

    def observations(self) -> list[tuple[dict[str, Any], float]]:
        """The warm start's earlier trials as (config, value of the metric): what a backend that optimises one
        objective learns from them."""
        found = self.warm_start.observations if self.warm_start is not None else ()
        return [(observation.config, observation.value(self.spec.metric)) for observation in found]

    def data_for_trainable(self) -> dict[str, Any]:
        """The `data` a trial gets, as a plain mapping."""
        if isinstance(self.data, BaseModel):
            return self.data.as_dict()
        return dict(self.data if self.data is not None else self.spec.data)

    def resolved(self) -> dict[str, Any]:
        """The file as it runs: every default filled in, overrides applied (written to `spec.yaml`)."""
        resolved = self.spec.model_dump(mode="json")
        if self.spec.objectives:  # metric/mode are the select objective's, which `select` says
            del resolved["metric"], resolved["mode"]
        else:
            del resolved["objectives"]
        resolved["space"] = self.raw.get("space", {})
        resolved["data"] = self.data_for_trainable()
        own = self.search_options.model_dump(mode="json")
        shared = self.spec.search.model_dump(mode="json", exclude=set(self.spec.search.model_extra or {}))
        resolved["search"] = {**shared, **own}
        return resolved


# ----------------------------------------------------------------------------------------------------------
# Validation


def _keys_of(loc: tuple[Any, ...]) -> list[str]:
    section = SECTIONS.get(".".join(str(part) for part in loc))
    keys = list(section.model_fields) if section else []
    if section is SearchSpec:  # and every algorithm's own keys, once each
        own = (key for algorithm in ALGORITHMS for key in algorithm.options.model_fields)
        keys = list(dict.fromkeys([*keys, *own]))
    return keys


def _problems(error: ValidationError, prefix: str = "",
              keys_of: Callable[[tuple[Any, ...]], list[str]] = _keys_of) -> list[Problem]:
    return [Problem(path, message) for path, message in pydantic_problems(error, prefix=prefix, keys_of=keys_of)]


def _validated(model: type[BaseModel], values: Mapping[str, Any], prefix: str, problems: list[Problem],
               context: dict[str, Any] | None = None) -> BaseModel | None:
    """`model` from `values`, or None with every problem appended. A mapping whose keys break their own rules
    is checked again without them, so the rules between keys are reported in the same pass."""
    values = dict(values)
    while True:
        try:
            return model.model_validate(values, context=context)
        except ValidationError as exc:
            found = _problems(exc, prefix, keys_of=lambda loc: list(model.model_fields))
            problems.extend(p for p in found if p not in problems)
            keys = {error["loc"][0] for error in exc.errors() if error["loc"] and error["loc"][0] in values}
            if not keys:
                return None
            for key in keys:
                del values[key]


def _search_options(raw: Any, algorithm: SearchAlgorithm | None, problems: list[Problem],
                    warnings: list[str]) -> BaseModel | None:
    """The algorithm's own `search:` keys (checked on the file's mapping, so that they are reported with the
    rest of the file's problems), validated by its options model (`algorithm`: the backend that runs, the
    one `auto` picked; None when the file names none that exists). Another algorithm's keys are ignored with
    a warning: a file switched with `--set search.algorithm=...` keeps working."""
    if not isinstance(raw, dict):
        raw = {}
    shared = SearchSpec.model_fields
    own = algorithm.options.model_fields if algorithm is not None else {}
    given = {}
    for key, value in raw.items():
        if key in shared:
            continue
        if key in own:
            given[key] = value
            continue
        owners = [other.name for other in ALGORITHMS if key in other.options.model_fields]
        if owners and algorithm is not None:
            warnings.append(f"search.{key}: an option of {', '.join(owners)}, ignored by {algorithm.name}")
        elif not owners:
            allowed = _keys_of(("search",))
            problems.append(Problem(f"search.{key}", f"unknown key{did_you_mean(key, allowed)}; allowed: "
                                                     f"{', '.join(allowed)}"))
    return _validated(algorithm.options, given, "search", problems) if algorithm is not None else None


def knob_values(tree: Any) -> dict[str, list[Any]]:
    """Each knob name a built-in would see (groups merged) with the literal values it may take."""
    knobs: dict[str, list[Any]] = {}

    def walk(node: Any, name: str | None, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, key, f"{path}.{key}")
        elif isinstance(node, (spacelib.Choice, spacelib.Grid)):
            for option in (node.options if isinstance(node, spacelib.Choice) else node.values):
                walk(option, name, path)
        elif name is not None:
            knobs.setdefault(name, []).append((path, node))

    walk(tree, None, "space")
    return knobs


def _check_knobs(spec: ExperimentSpec, tree: Any, problems: list[Problem]) -> None:
    from trainables.catalog import KNOB_CHOICES, knob_names

    allowed = sorted(knob_names(spec.trainable))
    for name, uses in knob_values(tree).items():
        if name not in allowed:
            problems.append(Problem(uses[0][0], f"'{spec.trainable}' has no knob '{name}'"
                                                f"{did_you_mean(name, allowed)}; knobs: {', '.join(allowed)}"))
        elif name in KNOB_CHOICES:
            options = KNOB_CHOICES[name]
            for path, value in uses:
                if not isinstance(value, spacelib.Distribution) and value not in options:
                    problems.append(Problem(path, f"{name} must be one of {', '.join(map(str, options))}; "
                                                  f"got {brief(value)}{did_you_mean(value, options)}"))


def _families(spec: ExperimentSpec, tree: Any) -> list[tuple[str, str]]:
    """(family, key path) of each model family the trials may train: the trainable's, or an ensemble's bases."""
    from trainables.catalog import BUILTINS
    from trainables.configs import ENSEMBLE, EnsembleConfig

    if spec.trainable != ENSEMBLE:
        return [(spec.trainable, "trainable")]
    bases = [(value, path) for path, value in knob_values(tree).get("base", []) if value in BUILTINS]
    return bases or [(EnsembleConfig.base, "trainable")]


def _check_data(spec: ExperimentSpec, tree: Any, problems: list[Problem]) -> Any:
    """The `data:` section as the built-ins read it; a user's file is read now (what every trial would read
    first), so a missing file, column or class fails here rather than in every trial."""
    from trainables.catalog import DATA_KINDS, DataSpec, require_data_kind

    before = len(problems)
    data = _validated(DataSpec, spec.data, "data", problems)
    if data is None or len(problems) > before:
        return None
    if data.path is not None:
        from trainables.data.raw import read_raw

        try:
            kind = read_raw(data).kind
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            problems.append(Problem(key if key.startswith("data.") else "data.path", message or str(exc)))
            return None
    else:
        kind = DATA_KINDS[data.name]
    _check_builtin_metrics(spec, kind, problems)
    _check_tabular_knobs(tree, kind, problems)
    for family, path in _families(spec, tree):
        try:
            require_data_kind(spec.trainable, family, kind)
        except ValueError as exc:
            problems.append(Problem(path, str(exc)))
    return data


def _metric_paths(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """(key path, metric) of every metric the file optimises or constrains."""
    if spec.objectives:
        paths = [(f"objectives[{i}].metric", o.metric) for i, o in enumerate(spec.objectives)]
    else:
        paths = [("metric", spec.metric)]
    return paths + [(f"constraints.{metric}", metric) for metric in spec.constraints]


def _check_builtin_metrics(spec: ExperimentSpec, kind: str, problems: list[Problem]) -> None:
    """Each objective and constraint names a metric the built-ins report for this data and export."""
    from trainables.catalog import INT8_METRICS, SEARCHABLE_METRICS, TABULAR_METRICS

    for path, metric in _metric_paths(spec):
        if metric not in SEARCHABLE_METRICS:
            problems.append(Problem(path, f"built-in trainables report {', '.join(SEARCHABLE_METRICS)}; got "
                                          f"{brief(metric)}{did_you_mean(metric, SEARCHABLE_METRICS)}"))
        elif metric in INT8_METRICS and not spec.export.quantize:
            problems.append(Problem(path, f"{metric} is measured on each trial's int8 copy: set export.quantize: "
                                          "true"))
        elif metric in TABULAR_METRICS and kind != "tabular":
            problems.append(Problem(path, f"{metric} is reported for tabular data; this data set is {kind}"))


def _check_goal_despite(raw: dict[str, Any], error: ValidationError, problems: list[Problem]) -> None:
    """The goal's rules when other keys broke theirs (checked without those keys), so that one pass
    reports every problem."""
    broken = {entry["loc"][0] for entry in error.errors() if entry["loc"]}
    try:
        partial = ExperimentSpec.model_validate({k: v for k, v in raw.items() if k not in broken})
    except ValidationError:
        return
    _check_goal(raw, partial, problems)


def _check_tabular_knobs(tree: Any, kind: str, problems: list[Problem]) -> None:
    """`select_features` and `pca` choose among a table's columns: refused for images and text at once."""
    from trainables.configs import TABULAR_KNOBS

    if kind == "tabular":
        return
    for name in TABULAR_KNOBS:
        for path, value in knob_values(tree).get(name, []):
            if value is not None:
                problems.append(Problem(path, f"{name} works on tabular data; this data set is {kind}"))


def _check_goal(raw: dict[str, Any], spec: ExperimentSpec, problems: list[Problem]) -> ExperimentSpec:
    """`objectives`, `constraints` and `select` agree with each other and with metric/mode; returns the spec
    with metric/mode set to the `select` objective's (what checkpoints, `best` and the stoppers follow)."""
    if spec.objectives is None:
        if spec.select is not None and spec.select.objective != spec.metric:
            problems.append(Problem("select.objective", f"must be the metric {spec.metric!r} (or list "
                                                        f"objectives); got {brief(spec.select.objective)}"))
        return spec
    given = [key for key in ("metric", "mode") if key in raw]
    if given:
        problems.append(Problem(given[0], "give either metric/mode or objectives, not both"))
    metrics = [o.metric for o in spec.objectives]
    for i, metric in enumerate(metrics):
        if metric in metrics[:i]:
            problems.append(Problem(f"objectives[{i}].metric", f"{metric!r} is already objective "
                                                               f"{metrics.index(metric)}"))
    select = spec.select.objective if spec.select is not None else metrics[0]
    if select not in metrics:
        problems.append(Problem("select.objective", f"must be one of the objectives ({', '.join(metrics)}); got "
                                                    f"{brief(select)}{did_you_mean(select, metrics)}"))
        return spec
    if len(metrics) > 1 and spec.stop.target is not None:
        problems.append(Problem("stop.target", "a target stops on one metric; with several objectives there is "
                                               "no single one to reach (leave it out)"))
    mode = spec.objectives[metrics.index(select)].mode
    return spec.model_copy(update={"metric": select, "mode": mode})


def _check_builtin(spec: ExperimentSpec, tree: Any, problems: list[Problem]) -> Any:
    """Knobs, metric and data of a built-in trainable; returns its checked `DataSpec`."""
    from trainables.catalog import BUILTINS

    if spec.trainable not in BUILTINS:
        problems.append(Problem("trainable", f"unknown built-in {brief(spec.trainable)}"
                                             f"{did_you_mean(spec.trainable, BUILTINS)}; built-ins: "
                                             f"{', '.join(BUILTINS)}, or 'package.module:function'"))
        return None
    _check_knobs(spec, tree, problems)
    return _check_data(spec, tree, problems)


def _check_user_trainable(spec: ExperimentSpec, problems: list[Problem]) -> dict[str, Any]:
    """A user's `module:function`; returns the `data:` it gets: the mapping as written, the keys it shares
    with the built-ins checked for their types and ranges, a `path` made absolute (trials run elsewhere)."""
    from trainables.catalog import DataSpec
    from trainables.data.spec import OWN_TRAINABLE

    shared = {key: value for key, value in spec.data.items() if key in DataSpec.model_fields and value is not None}
    checked = _validated(DataSpec, shared, "data", problems, context=OWN_TRAINABLE)
    data = dict(spec.data)
    if checked is not None and checked.path is not None:
        data["path"] = checked.path
    if not TRAINABLE_REFERENCE.fullmatch(spec.trainable):
        problems.append(Problem("trainable", f"expected 'package.module:function', got {brief(spec.trainable)}"))
    if spec.export.quantize:
        problems.append(Problem("export.quantize", "int8 export rebuilds a built-in model; your own trainable "
                                                   "exports its own checkpoint"))
    return data


def _check_workers(spec: ExperimentSpec, problems: list[Problem]) -> None:
    """`resources.workers > 1`: a built-in trained data-parallel by Ray Train workers (DDP), one per GPU."""
    resources = spec.resources
    if resources.workers == 1:
        return
    if is_reference(spec.trainable):
        problems.append(Problem("resources.workers", f"{resources.workers} workers (data-parallel Ray Train) run "
                                                     "the built-in trainables only; your own trainable can start "
                                                     "its own TorchTrainer: use 1"))
    if 0 < resources.gpu < 1:
        problems.append(Problem("resources.gpu", f"with resources.workers {resources.workers}, gpu is per worker and "
                                                 "each worker needs a whole GPU (NCCL cannot share one between "
                                                 f"the workers of a trial): use 0 or 1, got {resources.gpu:g}"))
    elif resources.gpu > 1:
        problems.append(Problem("resources.gpu", f"with resources.workers {resources.workers}, gpu is per worker and "
                                                 "a worker trains on one GPU: use gpu 1 and more workers, got "
                                                 f"{resources.gpu:g}"))


def _check_initial_points(spec: ExperimentSpec, tree: dict[str, Any], problems: list[Problem]) -> None:
    """Each point names parameters of the space with values its choices allow."""
    import numpy as np

    for i, point in enumerate(spec.search.initial_points):
        path = f"search.initial_points[{i}]"
        unknown = [key for key in point if key not in tree]
        for key in unknown:
            problems.append(Problem(f"{path}.{key}", f"not a parameter of space{did_you_mean(key, list(tree))}"))
        if unknown:
            continue
        try:
            spacelib.complete_point(point, tree, np.random.RandomState(0))
        except ValueError as exc:
            problems.append(Problem(path, str(exc)))


def _check_cross(spec: ExperimentSpec, algorithm: SearchAlgorithm, tree: dict[str, Any],
                 problems: list[Problem]) -> Any:
    """The rules between sections; returns the `data:` a trial gets (a built-in's `DataSpec`, the mapping a
    user's trainable gets)."""
    problems.extend(algorithm.check(tree, spec.search.initial_points))
    problems.extend(SCHEDULERS.get(spec.scheduler.name).check(spec))
    if spec.resources.gpu > 1 and not float(spec.resources.gpu).is_integer():
        problems.append(Problem("resources.gpu", f"more than one GPU must be a whole number, got {spec.resources.gpu}"))
    _check_initial_points(spec, tree, problems)
    _check_workers(spec, problems)
    if is_reference(spec.trainable):
        return _check_user_trainable(spec, problems)
    return _check_builtin(spec, tree, problems)


def validate(raw: Any, *, file: str | None = None, lines: dict[str, int] | None = None,
             overridden: tuple[str, ...] = (), storage: str | None = None) -> Experiment:
    """Check a loaded experiment mapping completely; raise `SpecError` listing every problem."""
    lines = lines or {}
    problems: list[Problem] = []
    warnings: list[str] = []
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        raise SpecError([Problem("", f"the file must hold a mapping of keys (name, trainable, space, ...), "
                                     f"but it is {kind}", 1)], file)
    spec = None
    try:
        spec = ExperimentSpec.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_problems(exc))
        _check_goal_despite(raw, exc, problems)
    if spec is not None:
        spec = _check_goal(raw, spec, problems)
    tree: dict[str, Any] = {}
    if isinstance(raw.get("space"), dict):
        if not raw["space"]:
            problems.append(Problem("space", "must name at least one parameter"))
        tree = spacelib.parse_space(raw["space"], "space", problems)
    algorithm, why = _algorithm(raw.get("search"), spec, tree, space_ok=not problems)
    options = _search_options(raw.get("search"), algorithm, problems, warnings)
    if spec is not None and algorithm is not None and len(spec.objectives or ()) > 1 and not algorithm.multi_objective:
        able = ", ".join(a.name for a in ALGORITHMS if a.multi_objective and a.name != "auto")
        problems.append(Problem("search.algorithm", f"{algorithm.name} optimises one objective; with several "
                                                    f"objectives use {able} or auto"))
    data = None
    if spec is not None and algorithm is not None and not problems:
        data = _check_cross(spec, algorithm, tree, problems)
    if problems:
        raise SpecError([_locate(p, lines, overridden) for p in problems], file)
    assert spec is not None
    if spec.search.algorithm is None:  # the default, written out (spec.yaml, the plan)
        spec = spec.model_copy(update={"search": spec.search.model_copy(update={"algorithm": default_algorithm(spec)})})
    try:
        spec = spec.model_copy(update={"storage": resolve_storage(storage, spec.storage)})
    except ValueError as exc:
        raise SpecError([_locate(Problem("storage", str(exc)), lines, overridden)], file) from None
    assert options is not None and algorithm is not None  # a valid algorithm and options, or a problem above
    experiment = Experiment(spec=spec, space=tree, raw=raw, file=file, data=data, algorithm=algorithm,
                            search_options=options, chosen_because=why, scheduler=SCHEDULERS.get(spec.scheduler.name),
                            warnings=tuple(warnings))
    return _with_warm_start(experiment, lines, overridden)


def _with_warm_start(experiment: Experiment, lines: dict[str, int], overridden: tuple[str, ...]) -> Experiment:
    """The experiment with the earlier trials `search.warm_start` names (read from the storage, which is known
    only now); their problems raised as the file's."""
    from tunerd import warmstart

    found, problems, warnings = warmstart.load(experiment)
    if problems:
        raise SpecError([_locate(p, lines, overridden) for p in problems], experiment.file)
    return replace(experiment, warm_start=found, warnings=(*experiment.warnings, *warnings))


def _algorithm(raw: Any, spec: ExperimentSpec | None, tree: dict[str, Any], *,
               space_ok: bool) -> tuple[SearchAlgorithm | None, str]:
    """The backend that runs, and why when `auto` picked it: None when the file names no backend that exists
    (a problem reported elsewhere)."""
    name = raw.get("algorithm") if isinstance(raw, dict) else None
    if name is None:
        name = default_algorithm(spec)
    if not isinstance(name, str) or name not in ALGORITHMS:
        return None, ""
    named = ALGORITHMS.get(name)
    if spec is None or not space_ok:  # the file's other problems come first
        return named, ""
    return named.resolve(tree, spec.search.num_samples, objectives=len(spec.objectives or [spec.metric]))


def default_algorithm(spec: ExperimentSpec | None) -> str:
    """The algorithm a file that names none gets."""
    several = spec is not None and len(spec.objectives or ()) > 1
    return DEFAULT_MULTI_OBJECTIVE_ALGORITHM if several else DEFAULT_ALGORITHM


def _locate(problem: Problem, lines: dict[str, int], overridden: tuple[str, ...]) -> Problem:
    """Attach the file line of the closest key path that has one (or say it came from --set)."""
    path = problem.path
    for key in overridden:
        if path == key or path.startswith(key + ".") or path.startswith(key + "["):
            return Problem(path, f"{problem.message} (from --set {key})", None)
    probe = path
    while probe:
        if probe in lines:
            return Problem(path, problem.message, problem.line or lines[probe])
        parent = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
        probe = parent if parent != probe else ""  # a key like `a[b` has no parent to find
    return problem


def load(path: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = (), *,
         name: str | None = None, storage: str | None = None) -> Experiment:
    """Read, override and validate an experiment file; raise `SpecError` (nothing has started)."""
    file = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SpecError([Problem("", f"cannot read the file: {exc.strerror or exc}")], file) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SpecError([Problem("", f"the file is not UTF-8 text (byte {exc.start})", line)], file) from None
    try:
        raw, lines = parse_yaml(text)
        overridden: list[str] = []
        if isinstance(raw, dict):
            overridden = apply_overrides(raw, overrides)
            if name is not None:
                raw["name"] = name
                overridden.append("name")
    except YamlProblem as exc:
        raise SpecError([exc.problem], file) from None
    return validate(raw, file=file, lines=lines, overridden=tuple(overridden), storage=storage)
