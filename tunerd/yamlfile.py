"""Experiment files as YAML: safe loading that remembers the line of every key path, and `--set` overrides.

Only plain values come out (mappings, lists, text, numbers, booleans, null): no Python tags, nothing
evaluated, no dates, 64-bit numbers, and bounded size and depth, so a hostile file is refused with a
`Problem` naming the key path and line rather than exhausting memory or recursion.
"""
from __future__ import annotations

import math
import re
from typing import Any

import yaml

from tunerd.errors import Problem, brief

#: guards against YAML alias bombs and runaway nesting
MAX_NODES = 100_000
MAX_DEPTH = 64




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


class YamlProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _too_big(path: str, node: yaml.Node) -> YamlProblem:
    return YamlProblem(Problem(path, f"the file expands to more than {MAX_NODES} values or {MAX_DEPTH} levels "
                                      "(YAML aliases?)", node.start_mark.line + 1))


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:18]}...{text[-18:]}"


def _scalar(loader: _Loader, node: yaml.Node, path: str) -> Any:
    """A plain value (text, number, true/false, null); a number must fit 64 bits, as it will downstream."""
    line = node.start_mark.line + 1
    if node.tag.endswith(":int") and len(node.value) > 100:  # int() refuses over 4300 digits, slowly
        raise YamlProblem(Problem(path, f"integer {_short(node.value)} is out of range (64 bits)", line))
    try:
        value = loader.construct_object(node)
    except yaml.YAMLError:  # a tag PyYAML does not know: "not valid YAML"
        raise
    except Exception:  # PyYAML's scalar constructors raise whatever int(), float() or dict lookups raise
        raise YamlProblem(Problem(path, f"{_short(node.value)!r} is not a valid {node.tag.rsplit(':', 1)[-1]}",
                                   line)) from None
    if node.tag not in _SCALAR_TAGS:  # !!binary, !!timestamp: bytes and dates no searcher or JSON file takes
        raise YamlProblem(Problem(path, f"YAML tag {node.tag} is not allowed: tunerd files hold plain values", line))
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value < MAX_INT:
        raise YamlProblem(Problem(path, f"integer {_short(str(value))} is out of range (64 bits)", line))
    if isinstance(value, float) and math.isinf(value) and "inf" not in node.value.lower():
        raise YamlProblem(Problem(path, f"number {_short(node.value)} is out of range (64-bit float)", line))
    return value


def _merged_size(node: yaml.MappingNode, path: str, sizes: dict[int, int], depth: int) -> int:
    """How many pairs `node` holds once its `<<` merge keys are expanded (merges of merges grow exponentially,
    and a mapping merging itself sends PyYAML into endless recursion)."""
    if id(node) in sizes:
        if sizes[id(node)] < 0:
            raise YamlProblem(Problem(path, "a merge key (<<) includes its own mapping", node.start_mark.line + 1))
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
        raise YamlProblem(Problem(path[:80] + "...", f"key path longer than {MAX_PATH} characters",
                                   node.start_mark.line + 1))
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise YamlProblem(Problem(path, f"YAML tag {node.tag} is not allowed: tunerd files hold plain values",
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
                raise YamlProblem(Problem(path, "keys must be plain names", key_node.start_mark.line + 1))
            key = _scalar(loader, key_node, path)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise YamlProblem(Problem(path, f"key {brief(key)} must be a name", key_node.start_mark.line + 1))
            key = str(key) if not isinstance(key, str) else key
            child = f"{path}.{key}" if path else key
            if i >= len(node.value) - own:
                if key in written:
                    raise YamlProblem(Problem(child, "duplicate key", key_node.start_mark.line + 1))
                written.add(key)
            result[key] = _construct(loader, value_node, child, lines, budget, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(loader, item, f"{path}[{i}]", lines, budget, depth + 1)
                for i, item in enumerate(node.value)]
    return _scalar(loader, node, path)


def parse_yaml(text: str, where: str = "") -> tuple[Any, dict[str, int]]:
    """Safe-load YAML text; returns the value and {key path: line}. Raises `YamlProblem`."""
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
        raise YamlProblem(Problem(where, f"not valid YAML: character U+{exc.character:04X} is not allowed "
                                          "(control characters must be escaped in double quotes)",
                                   text.count("\n", 0, exc.position) + 1)) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        raise YamlProblem(Problem(where, f"not valid YAML: {reason}", mark.line + 1 if mark else None)) from None
    finally:
        if loader is not None:
            loader.dispose()


def _parse_override(item: str) -> tuple[list[str], Any]:
    key, sep, value = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise YamlProblem(Problem("--set", f"expected KEY=VALUE with a dotted KEY, got {item!r}"))
    try:
        parsed, _ = parse_yaml(value, key)
    except YamlProblem as exc:
        raise YamlProblem(Problem(f"--set {key}", exc.problem.message)) from None
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
                raise YamlProblem(Problem(f"--set {'.'.join(parts)}",
                                           f"{'.'.join(parts[:i + 1])} is not a mapping"))
        target[parts[-1]] = value
        paths.append(".".join(parts))
    return paths
