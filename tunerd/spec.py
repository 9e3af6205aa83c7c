"""The experiment file: safe YAML with line numbers, `--set` overrides, and complete validation.

Everything about a file is checked here, once; every problem is collected (key path, rule, value, file
line) before anything runs. The result, `Experiment`, is what the rest of tunerd trusts.
"""
from __future__ import annotations

import difflib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunerd import space as spacelib
from tunerd.errors import Problem, SpecError, brief

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_STORAGE = "./tunerd-results"
#: guards against YAML alias bombs and runaway nesting
MAX_NODES = 100_000
MAX_DEPTH = 64


# ----------------------------------------------------------------------------------------------------------
# The schema: one frozen, strict model per section; defaults are SPEC §1's.


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class SearchSpec(_Section):
    algorithm: Literal["grid", "random", "hyperopt", "bayesopt"] = "hyperopt"
    num_samples: int | None = Field(None, ge=1)
    max_concurrent: int | None = Field(None, ge=1)
    initial_points: list[dict[str, Any]] = []
    random_initial: int | None = Field(None, ge=0)
    acquisition: Literal["ei", "ucb", "poi"] = "ei"


class SchedulerSpec(_Section):
    name: Literal["asha", "fifo", "median"] = "asha"
    grace_period: int = Field(2, ge=1)
    reduction_factor: float = Field(3, gt=1)


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


class ExportSpec(_Section):
    quantize: bool = False


class DataSpec(BaseModel):
    """Handed to the trainable as written; built-ins understand the keys below (others are checked later)."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, allow_inf_nan=False)
    name: str | None = None  # neither name nor path: digits
    path: str | None = None
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    folds: int = Field(0, ge=0)
    classes: list[int | str] | None = Field(None, min_length=2)
    text_column: str | None = None
    label_column: str | None = None
    train_size: int | None = Field(None, ge=2)
    flips: bool | None = None


class ExperimentSpec(_Section):
    name: str = Field(pattern=NAME_PATTERN.pattern)
    trainable: str = Field(min_length=1)
    data: DataSpec = DataSpec()
    metric: str = "val_accuracy"
    mode: Literal["max", "min"] = "max"
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


SECTIONS: dict[str, type[BaseModel]] = {
    "": ExperimentSpec, "data": DataSpec, "search": SearchSpec, "scheduler": SchedulerSpec,
    "stop": StopSpec, "resources": ResourcesSpec, "checkpoint": CheckpointSpec, "failures": FailuresSpec,
    "export": ExportSpec,
}


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: the typed spec, the parsed space tree, and where it came from."""

    spec: ExperimentSpec
    space: dict[str, Any]
    raw: dict[str, Any]
    file: str | None = None

    @property
    def storage(self) -> str:
        return self.spec.storage

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_builtin(self) -> bool:
        return ":" not in self.spec.trainable

    @property
    def num_samples(self) -> int:
        """Ray Tune's num_samples: grid repeats for grid search, else trials (before grid axes)."""
        given = self.spec.search.num_samples
        if given is not None:
            return given
        return 1 if self.spec.search.algorithm == "grid" else 40

    @property
    def trial_count(self) -> int:
        grid = self.spec.search.algorithm == "grid"
        if self.spec.search.algorithm in ("grid", "random"):
            return self.num_samples * spacelib.grid_size(self.space, choices_are_grid=grid)
        return self.num_samples

    def resolved(self) -> dict[str, Any]:
        """The file as it runs: every default filled in, overrides applied (written to `spec.yaml`)."""
        data = self.spec.model_dump(mode="json")
        data["space"] = self.raw.get("space", {})
        return data


# ----------------------------------------------------------------------------------------------------------
# YAML: safe loading that remembers the line of every key path.


class _Loader(yaml.SafeLoader):
    """SafeLoader (no Python tags, nothing evaluated) that also reads `1e-3` as a float, as users expect, reads
    `2024-01-31` as text rather than a date, and refuses nesting deep enough to overflow PyYAML's recursion."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_DEPTH} levels of nesting",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_SCALAR_TAGS = tuple(f"tag:yaml.org,2002:{kind}" for kind in ("str", "int", "float", "bool", "null"))
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: a key path longer than this is not a name anyone wrote (it keeps alias bombs small in memory too)
MAX_PATH = 1000
#: 64-bit integers: what numpy, hyperopt and Ray's searchers hold
MAX_INT = 2**63


class _YamlProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _too_big(path: str, node: yaml.Node) -> _YamlProblem:
    return _YamlProblem(Problem(path, f"the file expands to more than {MAX_NODES} values or {MAX_DEPTH} levels "
                                      "(YAML aliases?)", node.start_mark.line + 1))


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:18]}...{text[-18:]}"


def _scalar(loader: _Loader, node: yaml.Node, path: str) -> Any:
    """A plain value (text, number, true/false, null); a number must fit 64 bits, as it will downstream."""
    line = node.start_mark.line + 1
    if node.tag.endswith(":int") and len(node.value) > 100:  # int() refuses over 4300 digits, slowly
        raise _YamlProblem(Problem(path, f"integer {_short(node.value)} is out of range (64 bits)", line))
    try:
        value = loader.construct_object(node)
    except yaml.YAMLError:  # a tag PyYAML does not know: "not valid YAML"
        raise
    except Exception:  # PyYAML's scalar constructors raise whatever int(), float() or dict lookups raise
        raise _YamlProblem(Problem(path, f"{_short(node.value)!r} is not a valid {node.tag.rsplit(':', 1)[-1]}",
                                   line)) from None
    if node.tag not in _SCALAR_TAGS:  # !!binary, !!timestamp: bytes and dates no searcher or JSON file takes
        raise _YamlProblem(Problem(path, f"YAML tag {node.tag} is not allowed: tunerd files hold plain values", line))
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value < MAX_INT:
        raise _YamlProblem(Problem(path, f"integer {_short(str(value))} is out of range (64 bits)", line))
    if isinstance(value, float) and math.isinf(value) and "inf" not in node.value.lower():
        raise _YamlProblem(Problem(path, f"number {_short(node.value)} is out of range (64-bit float)", line))
    return value


def _merged_size(node: yaml.MappingNode, path: str, sizes: dict[int, int], depth: int) -> int:
    """How many pairs `node` holds once its `<<` merge keys are expanded (merges of merges grow exponentially,
    and a mapping merging itself sends PyYAML into endless recursion)."""
    if id(node) in sizes:
        if sizes[id(node)] < 0:
            raise _YamlProblem(Problem(path, "a merge key (<<) includes its own mapping", node.start_mark.line + 1))
        return sizes[id(node)]
    if depth > MAX_DEPTH:
        raise _too_big(path, node)
    sizes[id(node)] = -1
    total = 0
    for key, value in node.value:
        if key.tag != _MERGE_TAG:
            total += 1
            continue
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        total += sum(_merged_size(source, path, sizes, depth + 1) for source in sources
                     if isinstance(source, yaml.MappingNode))
    sizes[id(node)] = total
    return total


def _construct(loader: _Loader, node: yaml.Node, path: str, lines: dict[str, int], budget: list[int],
               depth: int) -> Any:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        raise _too_big(path, node)
    if len(path) > MAX_PATH:
        raise _YamlProblem(Problem(path[:80] + "...", f"key path longer than {MAX_PATH} characters",
                                   node.start_mark.line + 1))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise _YamlProblem(Problem(path, f"YAML tag {node.tag} is not allowed: tunerd files hold plain values",
                                   node.start_mark.line + 1))
    if isinstance(node, yaml.MappingNode):
        own = len(node.value)
        if any(key.tag == _MERGE_TAG for key, _ in node.value):
            own = sum(key.tag != _MERGE_TAG for key, _ in node.value)
            budget[0] -= _merged_size(node, path, {}, 0)
            if budget[0] < 0:
                raise _too_big(path, node)
            loader.flatten_mapping(node)  # merged pairs first, then the mapping's own
        result: dict[Any, Any] = {}
        written: set[str] = set()  # the mapping's own keys: they override merged ones, and may not repeat
        for i, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                raise _YamlProblem(Problem(path, "keys must be plain names", key_node.start_mark.line + 1))
            key = _scalar(loader, key_node, path)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise _YamlProblem(Problem(path, f"key {brief(key)} must be a name", key_node.start_mark.line + 1))
            key = str(key) if not isinstance(key, str) else key
            child = f"{path}.{key}" if path else key
            if i >= len(node.value) - own:
                if key in written:
                    raise _YamlProblem(Problem(child, "duplicate key", key_node.start_mark.line + 1))
                written.add(key)
            result[key] = _construct(loader, value_node, child, lines, budget, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, f"{path}[{i}]", lines, budget, depth + 1)
                for i, item in enumerate(node.value)]
    return _scalar(loader, node, path)


def parse_yaml(text: str, where: str = "") -> tuple[Any, dict[str, int]]:
    """Safe-load YAML text; returns the value and {key path: line}. Raises `_YamlProblem`."""
    loader = None
    try:
        loader = _Loader(text)  # the reader refuses control characters here
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[str, int] = {}
        value = _construct(loader, node, where, lines, [MAX_NODES], 0)
        return value, lines
    except yaml.reader.ReaderError as exc:
        raise _YamlProblem(Problem(where, f"not valid YAML: character U+{exc.character:04X} is not allowed "
                                          "(control characters must be escaped in double quotes)",
                                   text.count("\n", 0, exc.position) + 1)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        raise _YamlProblem(Problem(where, f"not valid YAML: {reason}", mark.line + 1 if mark else None)) from None
    finally:
        if loader is not None:
            loader.dispose()


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, value = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise _YamlProblem(Problem("--set", f"expected KEY=VALUE with a dotted KEY, got {item!r}"))
    try:
        parsed, _ = parse_yaml(value, key)
    except _YamlProblem as exc:
        raise _YamlProblem(Problem(f"--set {key}", exc.problem.message)) from None
    return parts, parsed


def apply_overrides(raw: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> list[str]:
    """Apply `--set KEY=VALUE` (VALUE is YAML) in place; returns the overridden key paths."""
    paths = []
    for item in overrides:
        parts, value = _parse_override(item)
        target = raw
        for i, part in enumerate(parts[:-1]):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise _YamlProblem(Problem(f"--set {'.'.join(parts)}",
                                           f"{'.'.join(parts[:i + 1])} is not a mapping"))
        target[parts[-1]] = value
        paths.append(".".join(parts))
    return paths


# ----------------------------------------------------------------------------------------------------------
# Validation


def did_you_mean(word: Any, candidates: list[str] | tuple[str, ...]) -> str:
    """' (did you mean 'x'?)' when a candidate is close to `word`, else ''."""
    if not isinstance(word, str) or len(word) > 100:
        return ""
    close = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _loc_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _pydantic_problems(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        path = _loc_path(loc)
        value = item.get("input")
        kind = item["type"]
        if kind == "extra_forbidden":
            section = SECTIONS.get(".".join(str(p) for p in loc[:-1]))
            keys = list(section.model_fields) if section else []
            message = f"unknown key{did_you_mean(loc[-1], keys)}; allowed: {', '.join(keys)}"
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "literal_error":
            options = re.findall(r"'([^']*)'", item["ctx"]["expected"])
            message = f"must be one of {', '.join(options)}; got {brief(value)}{did_you_mean(value, options)}"
        elif kind == "string_pattern_mismatch" and loc == ("name",):
            message = (f"must start with a letter or digit and hold only letters, digits, '_', '.', '-' "
                       f"(at most 128), got {brief(value)}")
        elif kind == "model_type" or kind == "dict_type":
            message = f"must be a mapping, got {type(value).__name__} {brief(value)}"
        else:
            message = f"{item['msg'][0].lower()}{item['msg'][1:]}, got {brief(value)}"
        problems.append(Problem(path, message))
    return problems


def _check_algorithm(tree: Any, algorithm: str, problems: list[Problem]) -> None:
    for node in spacelib.iter_nodes(tree):
        if algorithm == "grid" and isinstance(node, spacelib.Distribution):
            problems.append(Problem(node.path, "grid search needs discrete values: use choice or grid, "
                                               "or another search.algorithm"))
        if algorithm in ("hyperopt", "bayesopt") and isinstance(node, spacelib.Grid):
            problems.append(Problem(node.path, f"{algorithm} cannot search a grid axis: use choice, "
                                               "or search.algorithm grid/random"))


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


def _check_builtin(spec: ExperimentSpec, tree: Any, problems: list[Problem]) -> None:
    from trainables import BUILTINS, DATASETS, KNOB_CHOICES, SEARCHABLE_METRICS, knob_names
    from trainables.data import DATA_KEYS

    if spec.trainable not in BUILTINS:
        problems.append(Problem("trainable", f"unknown built-in {brief(spec.trainable)}"
                                             f"{did_you_mean(spec.trainable, BUILTINS)}; built-ins: "
                                             f"{', '.join(BUILTINS)}, or 'package.module:function'"))
        return
    allowed = sorted(knob_names(spec.trainable))
    for name, uses in knob_values(tree).items():
        if name not in allowed:
            path = uses[0][0]
            problems.append(Problem(path, f"'{spec.trainable}' has no knob '{name}'"
                                          f"{did_you_mean(name, allowed)}; knobs: {', '.join(allowed)}"))
        elif name in KNOB_CHOICES:
            for path, value in uses:
                if not isinstance(value, spacelib.Distribution) and value not in KNOB_CHOICES[name]:
                    options = KNOB_CHOICES[name]
                    problems.append(Problem(path, f"{name} must be one of {', '.join(map(str, options))}; "
                                                  f"got {brief(value)}{did_you_mean(value, options)}"))
    if spec.metric not in SEARCHABLE_METRICS:
        problems.append(Problem("metric", f"built-in trainables report {', '.join(SEARCHABLE_METRICS)}; got "
                                          f"{brief(spec.metric)}{did_you_mean(spec.metric, SEARCHABLE_METRICS)}"))
    data = spec.data
    for key in (data.model_extra or {}):
        if key not in DATA_KEYS:
            problems.append(Problem(f"data.{key}", f"unknown key{did_you_mean(key, DATA_KEYS)}; "
                                                   f"allowed: {', '.join(DATA_KEYS)}"))
    if data.path is not None and data.name is not None:
        problems.append(Problem("data", "give either name (a built-in data set) or path (your own data), not both"))
    elif data.path is not None:
        if not Path(data.path).exists():
            problems.append(Problem("data.path", f"no such file or folder: {data.path}"))
    elif data.name not in DATASETS:
        problems.append(Problem("data.name", f"unknown data set {brief(data.name)}{did_you_mean(data.name, DATASETS)};"
                                             f" built-in: {', '.join(DATASETS)} (or data.path)"))
    if data.folds == 1:
        problems.append(Problem("data.folds", "one fold is no cross-validation: use 0 (off) or k >= 2"))
    if data.val_fraction + data.test_fraction >= 0.9:
        problems.append(Problem("data", "val_fraction + test_fraction must leave at least 10% for training, "
                                        f"got {data.val_fraction} + {data.test_fraction}"))


def _check_workers(spec: ExperimentSpec, problems: list[Problem]) -> None:
    """`resources.workers > 1`: a built-in trained data-parallel by Ray Train workers (DDP), one per GPU."""
    resources = spec.resources
    if resources.workers == 1:
        return
    if ":" in spec.trainable:
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
            continue
        if spec.search.algorithm in ("grid", "random"):
            for key, value in point.items():
                if isinstance(tree[key], spacelib.Choice) and isinstance(value, dict):
                    # Ray's variant generator assigns into the Categorical and fails
                    problems.append(Problem(f"{path}.{key}", "grid and random search (Ray's variant generator) "
                                                             "cannot start inside a conditional choice; use "
                                                             "hyperopt or bayesopt, or leave it out"))


def _check_cross(spec: ExperimentSpec, tree: Any, problems: list[Problem]) -> None:
    _check_algorithm(tree, spec.search.algorithm, problems)
    if spec.resources.gpu > 1 and not float(spec.resources.gpu).is_integer():
        problems.append(Problem("resources.gpu", f"more than one GPU must be a whole number, got {spec.resources.gpu}"))
    if spec.scheduler.name != "fifo" and spec.scheduler.grace_period > spec.stop.max_epochs:
        problems.append(Problem("scheduler.grace_period", f"({spec.scheduler.grace_period}) exceeds "
                                                          f"stop.max_epochs ({spec.stop.max_epochs})"))
    _check_initial_points(spec, tree, problems)
    if ":" in spec.trainable:
        module, _, function = spec.trainable.partition(":")
        if not re.fullmatch(r"[A-Za-z_][\w.]*", module) or not function.isidentifier():
            problems.append(Problem("trainable", f"expected 'package.module:function', got {brief(spec.trainable)}"))
        if spec.export.quantize:
            problems.append(Problem("export.quantize", "int8 export rebuilds a built-in model; your own trainable "
                                                       "exports its own checkpoint"))
    else:
        _check_builtin(spec, tree, problems)
    _check_workers(spec, problems)


def validate(raw: Any, *, file: str | None = None, lines: dict[str, int] | None = None,
             overridden: tuple[str, ...] = (), storage: str | None = None) -> Experiment:
    """Check a loaded experiment mapping completely; raise `SpecError` listing every problem."""
    lines = lines or {}
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        kind = "empty" if raw is None else f"a {type(raw).__name__}"
        raise SpecError([Problem("", f"the file must hold a mapping of keys (name, trainable, space, ...), "
                                     f"but it is {kind}", 1)], file)
    spec = None
    try:
        spec = ExperimentSpec.model_validate(raw)
        spec = spec.model_copy(update={"data": _normalise_data(spec.data)})
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc))
    except ValueError as exc:
        problems.append(Problem("data.path", str(exc)))
    tree: dict[str, Any] = {}
    if isinstance(raw.get("space"), dict):
        if not raw["space"]:
            problems.append(Problem("space", "must name at least one parameter"))
        tree = spacelib.parse_space(raw["space"], "space", problems)
    if spec is not None and not problems:
        _check_cross(spec, tree, problems)
    if problems:
        raise SpecError([_locate(p, lines, overridden) for p in problems], file)
    assert spec is not None
    try:
        spec = spec.model_copy(update={"storage": resolve_storage(storage, spec.storage)})
    except ValueError as exc:
        raise SpecError([_locate(Problem("storage", str(exc)), lines, overridden)], file) from None
    return Experiment(spec=spec, space=tree, raw=raw, file=file)


def _normalise_data(data: DataSpec) -> DataSpec:
    """Neither name nor path: digits. A path is made absolute: trials may run in another folder."""
    if data.path is not None:
        return data.model_copy(update={"path": _absolute(data.path)})
    if data.name is None:
        return data.model_copy(update={"name": "digits"})
    return data


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


def resolve_storage(cli: str | None, from_file: str | None) -> str:
    """`--storage`, then `$TUNERD_STORAGE`, then the file's `storage`, then `./tunerd-results` (SPEC §2)."""
    chosen = cli or os.environ.get("TUNERD_STORAGE") or from_file or DEFAULT_STORAGE
    if chosen.startswith("file://"):
        chosen = chosen[len("file://"):]
    if "://" in chosen:
        return chosen
    return _absolute(chosen)


def _absolute(path: str) -> str:
    """`path` made absolute; ValueError for one no folder can have (a NUL byte, `~user` of no user)."""
    try:
        return str(Path(path).expanduser().resolve())
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{brief(path)} is not a usable path ({exc})") from None


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
    except _YamlProblem as exc:
        raise SpecError([exc.problem], file) from None
    return validate(raw, file=file, lines=lines, overridden=tuple(overridden), storage=storage)

