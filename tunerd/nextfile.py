"""`tunerd analyze NAME --write NEXT.yaml`: the next experiment file, made from the experiment's resolved
`spec.yaml` and its `Analysis`, with a YAML comment on every line it changed saying why.

- a parameter whose importance is below `UNIMPORTANT` (in every objective) is fixed at the best trial's value;
- a numeric range is narrowed around its best region (padded by `PAD` of the old range on each side, in log
  space for log kinds; the distribution kind is kept), and widened by `WIDEN` past a bound the best trials
  crowd (never across 0 from a range that started at or above it);
- a choice keeps only the options the best trials took (one left: it is fixed);
- the name gets the next `-N`; where the search algorithm the next file runs learns from earlier trials
  (`SearchAlgorithm.warm_starts`), the experiment's trials become its `search.warm_start`; else the best trial
  becomes the one initial point (it lies in the new space).
Parameters inside a conditional sub-space are left as they are (fewer trials saw them). The text is checked
as `tunerd validate` checks a file before it is written (atomically; an existing file only with `overwrite`).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import yaml

from tunerd.analysis import Analysis, BoundWarning, Region, option_text, position
from tunerd.errors import UsageError
from tunerd.searchers._optuna import decoded
from tunerd.space import Distribution, Grid, is_searched

#: below this importance (a share of 1) a parameter is fixed at the best trial's value
UNIMPORTANT = 0.05
#: the best region is padded by this share of the old range on each side; a crowded bound moves out by WIDEN
PAD, WIDEN = 0.25, 0.25
#: a new range at least this share of the old one is no narrowing worth a change
KEEP = 0.9

Comments = dict[tuple[str, ...], str]


def write_next(analysis: Analysis, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write the next experiment file to `path`; a UsageError when it exists (and `overwrite` is off)."""
    from trainables.files import write_atomic
    from tunerd.spec import validate
    from tunerd.yamlfile import parse_yaml

    target = Path(path)
    if target.exists() and not overwrite:
        raise UsageError(f"--write: {target} exists; pass --overwrite to replace it")
    if target.is_dir():
        raise UsageError(f"--write: {target} is a folder")
    spec, comments = next_spec(analysis)
    header = f"written by `tunerd analyze {analysis.name}` from {analysis.used} trials in {analysis.storage}"
    text = render(spec, comments, header=header)
    raw, lines = parse_yaml(text)
    experiment = validate(raw, file=str(target), lines=lines)  # what `tunerd validate` checks (not the import)
    search = spec.get("search")
    if isinstance(search, dict) and experiment.algorithm.warm_starts and analysis.name not in search.get(
            "warm_start", []):
        warm_start_from(analysis, spec, comments)  # the algorithm the next file runs (auto: picks) learns from it
        text = render(spec, comments, header=header)
        raw, lines = parse_yaml(text)
        validate(raw, file=str(target), lines=lines)  # reads the warm start's source too
    write_atomic(target, text)
    return target


def warm_start_from(analysis: Analysis, spec: dict[str, Any], comments: Comments) -> None:
    """The analysed experiment's trials enter the next search as observations (`search.warm_start`), those
    outside the narrowed space left out: the next round starts from all it learnt, not only its best trial,
    which is among them (so it is not run again as an initial point)."""
    search = spec["search"]
    search["warm_start"] = [*search.get("warm_start", []), analysis.name]
    comments[("search", "warm_start")] = (f"the trials of {analysis.name} enter this search as observations (those "
                                          "outside the narrowed space are left out)")
    search["initial_points"] = []
    comments[("search", "initial_points")] = (f"the best trial of {analysis.name} is in the warm start: not run "
                                              "again")


def next_spec(analysis: Analysis) -> tuple[dict[str, Any], Comments]:
    """The next experiment as a mapping, and the comment of each changed key path."""
    import copy

    if not analysis.spec:
        raise UsageError(f"{analysis.name} has no spec.yaml to start the next experiment from")
    spec = copy.deepcopy(analysis.spec)
    comments: Comments = {}
    name = next_name(analysis.name, analysis.storage)
    comments[("name",)] = f"was {analysis.name}"
    spec["name"] = name
    warned = {w.parameter: w for w in analysis.warnings}
    point: dict[str, Any] = {}
    for label, node in analysis.nodes.items():
        keys = tuple(label.split("."))
        raw = _raw(analysis.spec["space"], keys)
        if label not in analysis.regions or raw is None:
            continue  # inside a conditional sub-space: left as it is
        change = _change(analysis, label, node, raw, warned.get(label))
        if change is not None:
            _put(spec["space"], keys, change[0])
            comments[("space", *keys)] = change[1]
        best = _best(analysis, label, node, raw)
        if is_searched(_raw(spec["space"], keys)) and not isinstance(node, Grid) and not isinstance(best, dict):
            _put(point, keys, best)
    if isinstance(spec.get("search"), dict):
        spec["search"]["initial_points"] = [point] if point else []
        comments[("search", "initial_points")] = (f"the best trial of {analysis.name}, tried first" if point
                                                  else "emptied: every searched parameter is now fixed")
    return spec, comments


def _raw(space: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The value the file wrote at `keys` under `space:` through nested groups only (None inside a choice)."""
    node: Any = space
    for key in keys:
        if not isinstance(node, dict) or is_searched(node) or key not in node:
            return None
        node = node[key]
    return node


def _put(tree: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value


def _best(analysis: Analysis, label: str, node: Any, raw: dict[str, Any]) -> Any:
    """The best trial's value of the parameter as the file writes it (a choice's option as written)."""
    index = analysis.best_params[label]
    return decoded(node, index) if isinstance(node, Distribution) else next(iter(raw.values()))[index]


def next_name(name: str, storage: str) -> str:
    """`digits-cnn` -> `digits-cnn-2`, `digits-cnn-2` -> `digits-cnn-3`: the first not yet in the storage."""
    from tunerd.storage import list_folders

    match = re.fullmatch(r"(.*)-(\d+)", name)
    stem, number = (match.group(1), int(match.group(2)) + 1) if match else (name, 2)
    taken = set(list_folders(storage))
    while f"{stem}-{number}" in taken:
        number += 1
    return f"{stem}-{number}"


def _change(analysis: Analysis, label: str, node: Any, raw: dict[str, Any],
            warning: BoundWarning | None) -> tuple[Any, str] | None:
    """The parameter's new value in the file and why, or None to leave it as it is."""
    importance = analysis.importance_of(label)
    region = analysis.regions[label]
    said = f"importance {importance:.3f}" if importance is not None else "importance not assessed"
    if importance is not None and importance < UNIMPORTANT and len(analysis.nodes) > 1:
        best = _best(analysis, label, node, raw)
        return _fixed(best), f"fixed at the best trial's value: {said} (< {UNIMPORTANT}); was {_was(raw)}"
    if isinstance(node, Distribution):
        return _numeric(node, region, warning, said)
    return _choices(node, raw, region, said)


def _was(raw: dict[str, Any]) -> str:
    kind, args = next(iter(raw.items()))
    return f"{kind} {_flow(args)}"


def _numeric(node: Distribution, region: Region, warning: BoundWarning | None, said: str) -> tuple[Any, str] | None:
    if node.kind == "normal":
        return None
    assert region.low is not None and region.high is not None
    low, high = position(node, region.low) - PAD, position(node, region.high) + PAD
    low, high = max(low, 0.0), min(high, 1.0)
    if warning is not None:
        low, high = (-WIDEN, high) if warning.side == "lower" else (low, 1.0 + WIDEN)
    elif high - low >= KEEP:
        return None
    lo, hi = _bounds(node, _value_at(node, low), _value_at(node, high))
    side = warning.side if warning is not None else None
    lo, hi = (lo if side == "lower" else max(lo, node.low)), (hi if side == "upper" else min(hi, node.high))
    if (lo, hi) == (node.low, node.high):
        return None
    args = [lo, hi, *([node.q] if node.q is not None else [])]
    top = f"the best {region.top} trials used {region.low:.3g} to {region.high:.3g}"
    why = (f"widened from [{node.low:g}, {node.high:g}]: {warning.message.split(': ', 1)[1].removesuffix(': widen it')}"
           if warning is not None else f"narrowed from [{node.low:g}, {node.high:g}]: {top}")
    return {node.kind: args}, f"{why} ({said})"


def _value_at(node: Distribution, share: float) -> float:
    """The value at `share` of the node's range (log space for log kinds); may lie outside it."""
    if node.is_log:
        return math.exp(math.log(node.low) + share * (math.log(node.high) - math.log(node.low)))
    return node.low + share * (node.high - node.low)


def _bounds(node: Distribution, lo: float, hi: float) -> tuple[float, float]:
    """Bounds rounded outward (integers, multiples of q, 3 significant digits), never below 0 from a range
    that started at or above it, >= 1 for an integer log scale, at least q apart."""
    if node.low >= 0:
        lo = max(lo, 0.0)
    if node.q is not None:
        lo, hi = math.floor(lo / node.q) * node.q, math.ceil(hi / node.q) * node.q
        if hi - lo < node.q:
            hi = lo + node.q
        lo, hi = _tidy(lo), _tidy(hi)
    elif node.is_integer:
        lo, hi = math.floor(lo), math.ceil(hi)
    else:
        lo, hi = _round(lo, math.floor), _round(hi, math.ceil)
    if node.kind == "lograndint":
        lo = max(lo, 1)
    if node.is_log and lo <= 0:
        lo = node.low
    return (int(lo), int(hi)) if node.is_integer else (float(lo), float(hi))


def _round(value: float, direction: Any) -> float:
    """`value` to 3 significant digits, rounded in `direction` (math.floor or math.ceil)."""
    if value == 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(abs(value))) - 2)
    return _tidy(direction(value / scale) * scale)


def _tidy(value: float) -> float:
    return float(f"{value:.12g}")


def _fixed(value: Any) -> Any:
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _choices(node: Any, raw: dict[str, Any], region: Region, said: str) -> tuple[Any, str] | None:
    kind, options = next(iter(raw.items()))
    taken = set(region.options or {})
    kept = [i for i in range(len(options)) if option_text(node, i) in taken]
    if not kept or len(kept) == len(options):
        return None
    if len(kept) == 1:
        return options[kept[0]], f"fixed: each of the best {region.top} trials used it ({said}); was {_was(raw)}"
    dropped = ", ".join(option_text(node, i) for i in range(len(options)) if i not in kept)
    return ({kind: [options[i] for i in kept]},
            f"dropped {dropped}: none of the best {region.top} trials used it ({said})")


# ----------------------------------------------------------------------------------------------------------
# The file: YAML in block style, each leaf on its own line so that a comment can say why it changed


def render(spec: dict[str, Any], comments: Comments, *, header: str) -> str:
    lines = [f"# {header}", "# every line analyze changed carries a comment saying why"]
    _render(spec, comments, (), 0, lines)
    return "\n".join(lines) + "\n"


def _render(mapping: dict[str, Any], comments: Comments, path: tuple[str, ...], indent: int,
            lines: list[str]) -> None:
    for key, value in mapping.items():
        here = (*path, str(key))
        comment = f"  # {comments[here]}" if here in comments else ""
        if isinstance(value, dict) and value and not is_searched(value):
            lines.append(f"{' ' * indent}{_flow(key)}:{comment}")
            _render(value, comments, here, indent + 2, lines)
        else:
            lines.append(f"{' ' * indent}{_flow(key)}: {_flow(value)}{comment}")


def _flow(value: Any) -> str:
    """One value as YAML on one line."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()
