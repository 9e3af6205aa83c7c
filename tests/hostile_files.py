"""Hostile experiment files: hypothesis strategies that break one thing in a valid file, and `check_file`, which
runs the real CLI on one in-process with Ray fenced off.

Shared by tests/test_hostile_files.py and benchmarks/reliability.py. Most strategies start from a valid file
(`BASES`) and break one key path, so the error must name that path; the file-level ones (not a mapping, not
UTF-8, broken YAML, alias bombs) must name the file. SPEC §1 "Errors": exit 2, before anything starts.
"""
from __future__ import annotations

import copy
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import assume
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
FILE_NAME = "hostile.yaml"
#: what check_file returns when the CLI got as far as starting Ray or a run: the worst outcome
RAY_STARTED = -1
#: an error message longer than this is itself a problem (a small file must not print megabytes)
MAX_OUTPUT = 100_000
#: bombs expand past this many values: far beyond any real experiment file
BOMB_SIZE = 10**6


@dataclass(frozen=True)
class Hostile:
    """One malformed file: its bytes, and what the error must say about it."""

    category: str
    data: bytes
    path: str = ""  # the key path the message must name; "" for a file-level problem (the file is named)
    phrase: str = ""  # text the message must hold as well


# ----------------------------------------------------------------------------------------------------------
# Valid starting points: a built-in trainable with every section, and a user trainable with every
# distribution kind, a nested group and a conditional choice.

BUILTIN: dict[str, Any] = {
    "name": "hostile-builtin",
    "trainable": "mlp",
    "data": {"name": "digits", "val_fraction": 0.2, "test_fraction": 0.2, "folds": 0},
    "metric": "val_accuracy",
    "mode": "max",
    "seed": 0,
    "space": {"lr": {"loguniform": [1e-4, 1e-1]}, "batch_size": {"choice": [32, 64]},
              "dropout": {"uniform": [0.0, 0.5]}, "activation": {"choice": ["relu", "tanh"]},
              "hidden_layers": {"randint": [1, 3]}, "epochs": 2},
    "search": {"algorithm": "random", "num_samples": 4, "max_concurrent": 2},
    "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 3},
    "stop": {"max_epochs": 2, "time_budget_s": 60, "target": 0.99},
    "resources": {"cpu": 1, "gpu": 0, "workers": 1},
    "checkpoint": {"every": 1, "keep": 2},
    "failures": {"max_retries": 0},
    "storage": "hostile-results",
    "tensorboard": False,
    "export": {"quantize": False},
}
USER: dict[str, Any] = {
    "name": "hostile-user",
    "trainable": "tests.fixtures.toy:quadratic",
    "data": {"anything": "the user's own"},
    "metric": "loss",
    "mode": "min",
    "space": {"x": {"uniform": [-3, 3]}, "n": {"randint": [1, 4]}, "q": {"quniform": [0, 1, 0.25]},
              "k": {"qrandint": [8, 64, 8]}, "g": {"normal": [0, 1]},
              "group": {"h": {"lograndint": [1, 64]}, "c": {"qloguniform": [1, 100, 1]}, "depth": 2},
              "cond": {"choice": [{"kind": "a", "v": {"loguniform": [0.01, 1]}}, {"kind": "b"}]},
              "epochs": 2},
    "search": {"algorithm": "hyperopt", "num_samples": 2, "initial_points": [{"x": 0.5}]},
}
BASES = {"builtin": BUILTIN, "user": USER}

KINDS = {"uniform": 2, "quniform": 3, "loguniform": 2, "qloguniform": 3, "randint": 2, "qrandint": 3,
         "lograndint": 2, "normal": 2}
#: SPEC §1's keys: how each is typed (an `o` prefix: null is allowed too)
SCHEMA: dict[str, str] = {
    "name": "str", "trainable": "str", "metric": "str", "mode": "max|min", "seed": "int", "storage": "str",
    "tensorboard": "bool", "data": "mapping", "space": "mapping", "data.name": "ostr", "data.val_fraction": "float",
    "data.test_fraction": "float", "data.folds": "int",
    "search": "mapping", "search.algorithm": "grid|random|hyperopt|bayesopt", "search.num_samples": "oint",
    "search.max_concurrent": "oint", "search.initial_points": "list",
    "scheduler": "mapping", "scheduler.name": "asha|fifo|median", "scheduler.grace_period": "int",
    "scheduler.reduction_factor": "float",
    "stop": "mapping", "stop.max_epochs": "int", "stop.time_budget_s": "ofloat", "stop.target": "ofloat",
    "resources": "mapping", "resources.cpu": "float", "resources.gpu": "float", "resources.workers": "int",
    "checkpoint": "mapping", "checkpoint.every": "int", "checkpoint.keep": "int",
    "failures": "mapping", "failures.max_retries": "int", "export": "mapping", "export.quantize": "bool",
}
SECTIONS = sorted({key.split(".")[0] for key in SCHEMA if "." in key} - {"data"})
#: a value that breaks the rule of a correctly typed key
OUT_OF_RANGE: dict[str, st.SearchStrategy[Any]] = {
    "seed": st.one_of(st.integers(-2**62, -1), st.integers(2**32, 2**62)),
    "search.num_samples": st.integers(-1000, 0), "search.max_concurrent": st.integers(-1000, 0),
    "scheduler.grace_period": st.integers(-1000, 0),
    "scheduler.reduction_factor": st.floats(-1e6, 1, allow_nan=False),
    "stop.max_epochs": st.integers(-1000, 0), "stop.time_budget_s": st.floats(-1e6, 0, allow_nan=False),
    "resources.cpu": st.floats(-1e6, 0, allow_nan=False), "resources.gpu": st.floats(-1e6, -1e-9, allow_nan=False),
    "resources.workers": st.integers(-1000, 0), "checkpoint.every": st.integers(-1000, 0),
    "checkpoint.keep": st.integers(-1000, 0), "failures.max_retries": st.integers(-1000, -1),
    "data.val_fraction": st.one_of(st.floats(-1e6, 0, allow_nan=False), st.floats(1, 1e6, allow_nan=False)),
    "data.test_fraction": st.one_of(st.floats(-1e6, 0, allow_nan=False), st.floats(1, 1e6, allow_nan=False)),
    "data.folds": st.integers(-1000, -1),
}
#: SPEC §1: the experiment's folder name; parameters are plain identifiers
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
PARAMETER_RULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ----------------------------------------------------------------------------------------------------------
# Writing a document: YAML as tunerd reads it, with raw snippets (`.nan`, a 5,000-digit number, a tag)
# spliced in where a placeholder stands.


class _Dumper(yaml.SafeDumper):
    """Quotes `1e3` as tunerd's loader would read it as a number (PyYAML's own dumper does not)."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
                              list("-+0123456789"))


class Raw(str):
    """A YAML snippet written as is (a placeholder is dumped, then replaced)."""


def render(path: tuple[Any, ...]) -> str:
    """("space", "lr", "choice", 1) -> "space.lr.choice[1]": the key path as tunerd's messages write it."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def dump(doc: Any, flow: bool = False) -> bytes:
    raws: list[str] = []

    def swap(node: Any) -> Any:
        if isinstance(node, Raw):
            raws.append(str(node))
            return f"HOSTILE{len(raws) - 1}RAW"
        if isinstance(node, dict):
            return {key: swap(value) for key, value in node.items()}
        if isinstance(node, list):
            return [swap(value) for value in node]
        return node

    text = yaml.dump(swap(doc), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**9,
                     default_flow_style=None if flow else False)
    for i, raw in enumerate(raws):
        text = text.replace(f"HOSTILE{i}RAW", raw, 1)
    return text.encode("utf-8")


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `doc` with `value` at `path` (missing mappings on the way are created)."""
    doc = copy.deepcopy(doc)
    target: Any = doc
    for part in path[:-1]:
        if isinstance(target, dict) and not isinstance(target.get(part), (dict, list)):
            target[part] = {}
        target = target[part]
    target[path[-1]] = value
    return doc


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, (*path, i))
    else:
        yield path


def _distributions(node: Any, path: tuple[Any, ...] = ("space",)) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path of the distribution's mapping, kind) for every distribution in a space, choices included."""
    if isinstance(node, dict) and len(node) == 1 and next(iter(node)) in (*KINDS, "choice", "grid"):
        kind = next(iter(node))
        yield path, kind
        if kind in ("choice", "grid"):
            for i, option in enumerate(node[kind]):
                yield from _distributions(option, (*path, kind, i))
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _distributions(value, (*path, key))


# ----------------------------------------------------------------------------------------------------------
# Values

_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x85\u2028\u2029"),
                max_size=12)
_SMALL_INT = st.integers(-1000, 1000)
_FLOAT = st.floats(-1e6, 1e6, allow_nan=False)
_NOT_A_MAPPING = st.one_of(_SMALL_INT, _FLOAT, _TEXT, st.booleans(), st.none(), st.lists(_SMALL_INT, max_size=3))
_WRONG = {
    "str": st.one_of(_SMALL_INT, _FLOAT, st.booleans(), st.none(), st.lists(_TEXT, max_size=2),
                     st.dictionaries(_TEXT, _SMALL_INT, min_size=1, max_size=2)),
    "int": st.one_of(_FLOAT, _TEXT, st.booleans(), st.none(), st.lists(_SMALL_INT, max_size=2),
                     st.dictionaries(_TEXT, _SMALL_INT, max_size=2)),
    "float": st.one_of(_TEXT, st.booleans(), st.none(), st.lists(_FLOAT, max_size=2),
                       st.dictionaries(_TEXT, _SMALL_INT, max_size=2)),
    "bool": st.one_of(_SMALL_INT, _FLOAT, _TEXT, st.none(), st.lists(st.booleans(), max_size=2)),
    "mapping": _NOT_A_MAPPING,
    "list": st.one_of(_SMALL_INT, _TEXT, st.booleans(), st.dictionaries(_TEXT, _SMALL_INT, max_size=2),
                      st.lists(st.one_of(_SMALL_INT, _TEXT, st.lists(_SMALL_INT, max_size=1)), min_size=1, max_size=3)),
}
_NON_FINITE = st.sampled_from([".nan", ".NaN", ".NAN", ".inf", ".Inf", "+.inf", "-.inf", "-.INF"])


def _wrong_value(kind: str) -> st.SearchStrategy[Any]:
    """A value a key of this kind refuses (`o` kinds take null, so null is not wrong for them)."""
    if "|" in kind:  # a Literal: any other text, or not text at all
        options = kind.split("|")
        return st.one_of(_TEXT.filter(lambda t: t not in options), _SMALL_INT, st.booleans(), st.none())
    optional = kind.startswith("o")
    values = _WRONG[kind.removeprefix("o")]
    return values.filter(lambda v: v is not None) if optional else values


@st.composite
def _huge_number(draw: st.DrawFn) -> str:
    """Integers past 64 bits (up to 12,000 digits) and floats past 1.8e308, as YAML text."""
    sign = draw(st.sampled_from(["", "-", "+"]))
    form = draw(st.sampled_from(["decimal", "hex", "float", "underscored"]))
    if form == "decimal":
        digits = draw(st.integers(20, 12_000))
        return f"{sign}{draw(st.integers(1, 9))}" + str(draw(st.integers(0, 9))) * (digits - 1)
    if form == "hex":
        return f"{sign}0x{draw(st.sampled_from('123456789abcdef'))}" + "f" * draw(st.integers(16, 200))
    if form == "underscored":
        return f"{sign}1" + "_000" * draw(st.integers(7, 2000))
    mantissa = draw(st.sampled_from(["1", "9", "1.5", "2.0", "9.99"]))
    return f"{sign}{mantissa}e{draw(st.sampled_from(['', '+']))}{draw(st.integers(309, 10**6))}"


def _typo(word: str) -> st.SearchStrategy[str]:
    """One edit (insert, delete or replace a letter) away from `word`."""
    letters = "abcdefghijklmnopqrstuvwxyz_"
    return st.one_of(
        st.tuples(st.integers(0, len(word)), st.sampled_from(letters)).map(lambda a: word[:a[0]] + a[1] + word[a[0]:]),
        st.integers(0, len(word) - 1).map(lambda i: word[:i] + word[i + 1:]),
        st.tuples(st.integers(0, len(word) - 1), st.sampled_from(letters)).map(
            lambda a: word[:a[0]] + a[1] + word[a[0] + 1:]),
    )


# ----------------------------------------------------------------------------------------------------------
# One strategy per kind of breakage


_base = st.sampled_from(sorted(BASES)).map(lambda name: BASES[name])
_flow = st.booleans()


@st.composite
def wrong_types(draw: st.DrawFn) -> Hostile:
    """A key of the schema given a value of another type (null where null is not allowed)."""
    base = draw(_base)
    key = draw(st.sampled_from(sorted(SCHEMA)))
    path = tuple(key.split("."))
    return Hostile("wrong type", dump(_set(base, path, draw(_wrong_value(SCHEMA[key]))), draw(_flow)), key)


@st.composite
def out_of_range(draw: st.DrawFn) -> Hostile:
    """The right type, a value the rule refuses (`num_samples: 0`, `cpu: -1`, `mode: maximize`)."""
    base = draw(_base)
    key = draw(st.sampled_from(sorted(OUT_OF_RANGE) + ["mode", "search.algorithm", "scheduler.name"]))
    if key in OUT_OF_RANGE:
        value = draw(OUT_OF_RANGE[key])
    else:
        options = SCHEMA[key].split("|")
        value = draw(st.one_of(st.sampled_from(options).flatmap(_typo), _TEXT).filter(lambda t: t not in options))
    return Hostile("out of range", dump(_set(base, tuple(key.split(".")), value), draw(_flow)), key)


@st.composite
def bad_bounds(draw: st.DrawFn) -> Hostile:
    """A distribution whose numbers break its rule: reversed or equal bounds, a log scale from <= 0, the wrong
    count, q <= 0 or past the range, a non-integer bound of an integer kind, sd <= 0, or a second key."""
    base = draw(_base)
    where, old = draw(st.sampled_from([d for d in _distributions(base["space"]) if d[1] in KINDS]))
    kind = draw(st.sampled_from([old] * 3 + list(KINDS)))
    count, integer, log = KINDS[kind], kind.endswith("randint"), kind.startswith(("log", "qlog"))
    lo = draw(st.integers(1, 100) if integer else st.floats(1e-3, 100))
    hi = lo + draw(st.integers(1, 100) if integer else st.floats(1e-3, 100))
    q = [draw(st.integers(1, 3))] if count == 3 else []
    flaws = ["count", "not numbers", "not a list", "second key"]
    if kind == "normal":
        flaws += ["sd"]
    else:
        flaws += ["reversed", "q"] if count == 3 else ["reversed"]
        flaws += ["equal"] if not integer else ["fraction"]
        flaws += ["log <= 0"] if log else []
    flaw = draw(st.sampled_from(flaws))
    path = (*where, kind)
    if flaw == "reversed":
        args: Any = [hi, lo, *q]
    elif flaw == "equal":
        args = [lo, lo, *q]
    elif flaw == "log <= 0":
        args = [draw(st.integers(-100, 0) if integer else st.floats(-100, 0)), hi, *q]
    elif flaw == "q":
        args = [lo, hi, draw(st.sampled_from([0, -1, hi - lo + 1]))]
    elif flaw == "fraction":
        args = [lo + 0.5, hi, *q]
    elif flaw == "sd":
        args = [lo, draw(st.floats(-100, 0))]
    elif flaw == "count":
        args = draw(st.lists(st.integers(1, 9), max_size=6).filter(lambda a: len(a) != count))
    elif flaw == "not numbers":
        bad = draw(st.one_of(_TEXT, st.booleans(), st.none(), st.lists(_SMALL_INT, max_size=1)))
        args = [lo, hi, *q]
        args[draw(st.integers(0, count - 1))] = bad
    elif flaw == "not a list":
        args = draw(st.one_of(_SMALL_INT, _TEXT, st.none(), st.dictionaries(_TEXT, _SMALL_INT, max_size=2)))
    else:  # a mapping with a distribution key and another key is neither a distribution nor a group
        extra = draw(st.one_of(st.sampled_from(list(KINDS) + ["choice"]), _TEXT).filter(lambda k: k != kind))
        doc = _set(base, where, {kind: [lo, hi, *q], extra: 1})
        return Hostile("bad bounds", dump(doc, draw(_flow)), render(where), "exactly one key")
    return Hostile("bad bounds", dump(_set(base, where, {kind: args}), draw(_flow)), render(path))


@st.composite
def non_finite(draw: st.DrawFn) -> Hostile:
    """.nan or .inf where a number is checked: a bound, a float key, a constant of the space, a choice option."""
    base = draw(_base)
    spots = [(*where, kind, i) for where, kind in _distributions(base["space"]) for i in
             range(KINDS.get(kind, len(_get(base, (*where, kind)))))
             if not isinstance(_get(base, (*where, kind, i)), dict)]
    spots += [("space", "epochs"), ("data", "val_fraction"), ("data", "test_fraction"),
              ("scheduler", "reduction_factor"), ("stop", "time_budget_s"), ("stop", "target"),
              ("resources", "cpu"), ("resources", "gpu"), ("seed",), ("search", "num_samples")]
    spot = draw(st.sampled_from(spots))
    named = spot[:-1] if len(spot) > 1 and spot[-2] in KINDS else spot  # a bound's message names its distribution
    return Hostile("non-finite", dump(_set(base, spot, Raw(draw(_NON_FINITE))), draw(_flow)), render(named))


@st.composite
def empty_choice(draw: st.DrawFn) -> Hostile:
    """choice or grid with no options, or options that are not a list."""
    base = draw(_base)
    where, _ = draw(st.sampled_from(list(_distributions(base["space"]))))
    kind = "choice" if base is USER else draw(st.sampled_from(["choice", "grid"]))  # hyperopt refuses grid anyway
    value = draw(st.one_of(st.just([]), st.none(), _SMALL_INT, _TEXT, st.dictionaries(_TEXT, _SMALL_INT, max_size=2)))
    return Hostile("empty choice", dump(_set(base, where, {kind: value}), draw(_flow)), render((*where, kind)))


@st.composite
def unknown_keys(draw: st.DrawFn) -> Hostile:
    """A key the section does not have: made up, or a one-letter typo of a real one (did-you-mean)."""
    base = draw(_base)
    scope = draw(st.sampled_from(["", *SECTIONS, "data", "space"] if base is BUILTIN else ["", *SECTIONS]))
    if scope == "space":
        from trainables import knob_names
        known = set(knob_names("mlp"))
    elif scope == "data":
        from trainables.data import DATA_KEYS
        known = set(DATA_KEYS)
    else:
        known = {k.removeprefix(f"{scope}.") for k in SCHEMA if k.count(".") == bool(scope)
                 and k.startswith(f"{scope}.")} if scope else {k for k in SCHEMA if "." not in k}
        known |= {"random_initial", "acquisition"} if scope == "search" else set()
    words = sorted(k for k in known if len(k) >= 4)
    typo = draw(st.booleans())
    made_up = st.one_of(_TEXT, _SMALL_INT, st.booleans(), _FLOAT)  # YAML keys may be numbers: `1: x`
    key = draw((st.sampled_from(words).flatmap(_typo) if typo else made_up).filter(
        lambda k: k != "" and str(k) not in known))
    path = (scope, key) if scope else (key,)
    phrase = "did you mean" if typo else ""
    return Hostile("unknown key", dump(_set(base, path, 1), draw(_flow)), render(tuple(map(str, path))), phrase)


@st.composite
def missing_keys(draw: st.DrawFn) -> Hostile:
    """name, trainable or space left out, or a space with no parameters."""
    doc = copy.deepcopy(draw(_base))
    key = draw(st.sampled_from(["name", "trainable", "space", "empty space"]))
    if key == "empty space":
        doc["space"] = {}
        return Hostile("missing key", dump(doc, draw(_flow)), "space", "at least one parameter")
    del doc[key]
    return Hostile("missing key", dump(doc, draw(_flow)), key, "required key is missing")


_BAD_NAME_PARTS = st.sampled_from(["/", "..", "../", "\\", "\x00", "\x07", "\x1b[31m", "\n", "\t", " ", "é", "~",
                                   "$", "*", ":", "\u202e"])


@st.composite
def bad_names(draw: st.DrawFn) -> Hostile:
    """An experiment name or a parameter name with `/`, `..`, control characters, spaces or other
    characters outside its rule, or one that is empty or too long."""
    base = draw(_base)
    pieces = st.lists(st.one_of(_BAD_NAME_PARTS, st.text("abc01_.-", max_size=3)), min_size=1, max_size=6)
    name = draw(st.one_of(pieces.map("".join), st.just(""), st.integers(129, 300).map(lambda n: "a" * n),
                          st.sampled_from([".hidden", "-dash", "_under", "../escape", "a/b", "/abs", ".."])))
    if draw(st.booleans()):
        assume(not NAME_RULE.fullmatch(name))
        return Hostile("bad name", dump(_set(base, ("name",), name), draw(_flow)), "name")
    assume(not PARAMETER_RULE.fullmatch(name))
    groups = [("space",), ("space", "group"), ("space", "cond", "choice", 0)] if base is USER else [("space",)]
    where = (*draw(st.sampled_from(groups)), name)
    return Hostile("bad name", dump(_set(base, where, {"uniform": [0, 1]}), draw(_flow)), render(where))


@st.composite
def not_a_mapping(draw: st.DrawFn) -> Hostile:
    """A top level that is a list, a scalar, or nothing at all."""
    value = draw(st.one_of(st.lists(_SMALL_INT, max_size=3), _SMALL_INT, _FLOAT, _TEXT, st.booleans(), st.none(),
                           st.lists(st.just(BUILTIN), min_size=1, max_size=1)))
    data = draw(st.one_of(st.just(dump(value)),
                          st.sampled_from([b"", b"\n", b"   \n", b"# only a comment\n", b"---\n", b"--- ~\n...\n",
                                           b"~\n"])))
    return Hostile("not a mapping", data, "", "must hold a mapping")


@st.composite
def not_utf8(draw: st.DrawFn) -> Hostile:
    """A valid file with bytes that are not UTF-8 in it, or the whole file in another encoding."""
    text = dump(draw(_base), draw(_flow))
    form = draw(st.sampled_from(["insert", "utf-16", "utf-32", "latin-1"]))
    if form == "insert":
        bad = draw(st.sampled_from([b"\xff", b"\xfe", b"\xff\xfe", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80",
                                    b"\xf8\x88\x80\x80\x80", b"\xe2\x82", b"\xc3"]))
        at = draw(st.integers(0, len(text)))
        data = text[:at] + bad + text[at:]
    elif form == "latin-1":
        data = text.replace(b"name: hostile", "name: hostilé".encode("latin-1"))
    else:
        data = text.decode("utf-8").encode(form)
    return Hostile("not UTF-8", data, "", "not UTF-8")


_SYNTAX = ["bad: [unclosed\n", "bad: {unclosed: 1\n", "bad: \"unclosed\n", "bad: a: b\n", "\tbad: 1\n",
           "bad: *undefined\n", "---\nbad: 1\n", "bad: ]\n", "bad: &x 1\nworse: &x 2\n", "bad: !custom 1\n",
           "bad: !!python/name:os.system\n", "bad: !!python/object:os.system\n", "%YAML 2.0\n---\nbad: 1\n",
           "bad: a\x07b\n", "bad: \x00\n", "bad: \x1b[2J\n", "bad: @at\n", "bad: `tick\n", "- item\n"]


#: top-level keys that are not names: the message is about the file's top level
_BAD_KEYS = [("null: 1\n", "must be a name"), ("~: 1\n", "must be a name"), ("[a, b]: 1\n", "plain names"),
             ("? {a: 1}\n: 1\n", "plain names"), ("!!binary aGk=: 1\n", "is not allowed")]


@st.composite
def broken_yaml(draw: st.DrawFn) -> Hostile:
    """A valid file with a line that is not YAML (or not one document) put between its top-level keys, or
    nesting deeper than anyone writes; a repeated key names the key."""
    text = dump(draw(_base)).decode()
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line[:1] not in (" ", "-")] + [len(lines)]
    at = draw(st.sampled_from(starts))
    form = draw(st.sampled_from(["syntax"] * 3 + ["deep", "duplicate", "key"]))
    if form == "key":
        snippet, phrase = draw(st.sampled_from(_BAD_KEYS))
        lines.insert(at, snippet)
        return Hostile("broken YAML", "".join(lines).encode(), "", phrase)
    if form == "duplicate":
        key = draw(st.sampled_from([line.split(":")[0] for line in lines if line[:1] not in (" ", "-")]))
        lines.insert(at, f"{key}: 1\n")
        return Hostile("broken YAML", "".join(lines).encode(), key, "duplicate key")
    if form == "deep":
        depth = draw(st.integers(70, 20_000))
        snippet = draw(st.sampled_from([
            "bad: " + "[" * depth + "]" * depth + "\n", "bad: " + "{a: " * depth + "1" + "}" * depth + "\n",
            "bad:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(min(depth, 300)))]))
        lines.insert(at, snippet)
        return Hostile("broken YAML", "".join(lines).encode(), "", "not valid YAML")
    snippet = draw(st.sampled_from(_SYNTAX))
    if snippet.startswith("%"):
        at = 0
    elif snippet.startswith("---"):  # a second document (at the top it would start the only one)
        at = len(lines)
    lines.insert(at, snippet)
    return Hostile("broken YAML", "".join(lines).encode(), "", "not valid YAML")


@st.composite
def yaml_tags(draw: st.DrawFn) -> Hostile:
    """A value with a tag that makes something other than plain data: Python objects, bytes, dates, sets."""
    base = draw(_base)
    spot = draw(st.sampled_from([p for p in _leaves(base)]))
    tag = draw(st.sampled_from([
        '!!python/object/apply:os.system ["echo hacked"]', "!!python/object/new:dict {}", "!!binary aGFja2Vk",
        "!!timestamp 2001-12-14", "!!set {a: null}", "!!omap [{a: 1}]", "!!pairs [{a: 1}]", "!custom [1]",
        "!custom {a: 1}", "!!python/tuple [1, 2]", "!!python/list [1]"]))
    return Hostile("YAML tag", dump(_set(base, spot, Raw(tag)), draw(_flow)), render(spot), "is not allowed")


@st.composite
def alias_bombs(draw: st.DrawFn) -> Hostile:
    """Billion laughs (lists, mappings or `<<` merges of anchors of anchors), an alias inside its own anchor,
    or a chain of aliases deeper than the file's nesting; placed before, inside or after a valid file."""
    form = draw(st.sampled_from(["lists", "mappings", "merges", "merge at top", "self", "self merge", "chain"]))
    fan = draw(st.integers(4, 12))
    levels = next(n for n in range(1, 40) if fan ** n >= BOMB_SIZE)
    if form == "lists":
        defs = ["&l0 [lol]"] + [f"&l{i} [{', '.join([f'*l{i - 1}'] * fan)}]" for i in range(1, levels + 1)]
    elif form == "mappings":
        defs = ["&l0 {a: lol}"] + [f"&l{i} {{{', '.join(f'k{j}: *l{i - 1}' for j in range(fan))}}}"
                                   for i in range(1, levels + 1)]
    elif form.startswith("merges") or form == "merge at top":
        defs = ["&l0 {" + ", ".join(f"k{j}: 1" for j in range(fan)) + "}"] + [
            f"&l{i} {{<<: [{', '.join([f'*l{i - 1}'] * fan)}]}}" for i in range(1, levels + 1)]
    elif form == "chain":
        levels = draw(st.integers(70, 2000))
        defs = ["&l0 [1]"] + [f"&l{i} [*l{i - 1}]" for i in range(1, levels + 1)]
    else:
        defs = ["&l0 [*l0]"] if form == "self" else ["&l0 {<<: *l0}"]
        levels = 0
    bomb = f"lol: [{', '.join(defs)}]\n"
    use = f"<<: *l{levels}\n" if form == "merge at top" else f"boom: *l{levels}\n"
    text = dump(draw(_base)).decode()
    # (merges of one anchor do not grow on PyYAML >= 6.0.4: inside `space` they would be valid constants)
    merged = form in ("merges", "merge at top")
    where = draw(st.sampled_from(["before", "after"] if merged else ["before", "after", "space"]))
    if where == "space":
        text = text.replace("space:\n", f"space:\n  lol: [{', '.join(defs)}]\n  boom: *l{levels}\n", 1)
    else:
        text = bomb + use + text if where == "before" else text + bomb + use
    phrase = "includes its own mapping" if form == "self merge" else "expands to more than"
    if form == "merges":
        # PyYAML >= 6.0.4 merges the same anchor once, so these merges do not grow: the file is then refused
        # for its unknown keys `lol` and `boom` instead (exit 2, naming the file and them), as safe
        phrase = ""
    return Hostile("alias bomb", text.encode(), "", phrase)


@st.composite
def huge_numbers(draw: st.DrawFn) -> Hostile:
    """An integer past 64 bits (up to 12,000 digits) or a float past 1.8e308 in place of any value."""
    base = draw(_base)
    spot = draw(st.sampled_from(list(_leaves(base))))
    return Hostile("huge number", dump(_set(base, spot, Raw(draw(_huge_number()))), draw(_flow)), render(spot),
                   "out of range")


_POINTS = [  # (point, the key path named): each breaks USER's space
    ({"x": 7}, "search.initial_points[0]"), ({"x": "abc"}, "search.initial_points[0]"),
    ({"n": 2.5}, "search.initial_points[0]"), ({"nope": 1}, "search.initial_points[0].nope"),
    ({"cond": {"kind": "zzz"}}, "search.initial_points[0]"), ({"x": None}, "search.initial_points[0]"),
    ({"x": [1]}, "search.initial_points[0]"), ({"group": {"h": 0}}, "search.initial_points[0]"),
]


@st.composite
def bad_initial_points(draw: st.DrawFn) -> Hostile:
    """search.initial_points that name no parameter, or give a value its distribution cannot produce."""
    point, path = draw(st.sampled_from(_POINTS))
    at = draw(st.integers(0, 2))
    points = [{"x": 0.5}] * at + [point]
    path = path.replace("[0]", f"[{at}]")
    return Hostile("bad initial point", dump(_set(USER, ("search", "initial_points"), points), draw(_flow)), path)


_CONFLICTS: list[tuple[str, tuple[tuple[str, ...], Any], str]] = [  # (base, (path, value), key path named)
    ("user", (("search", "algorithm"), "grid"), "space.x.uniform"),
    ("user", (("space", "x"), {"grid": [1, 2]}), "space.x.grid"),
    ("builtin", (("scheduler", "grace_period"), 5), "scheduler.grace_period"),
    ("user", (("resources", "workers"), 2), "resources.workers"),
    ("builtin", (("resources", "gpu"), 1.5), "resources.gpu"),
    ("builtin", (("resources",), {"workers": 2, "gpu": 0.5}), "resources.gpu"),
    ("builtin", (("data", "path"), "elsewhere.csv"), "data"),
    ("builtin", (("data", "val_fraction"), 0.75), "data"),
    ("builtin", (("data", "folds"), 1), "data.folds"),
    ("user", (("export", "quantize"), True), "export.quantize"),
    ("builtin", (("metric",), "val_acc"), "metric"),
    ("builtin", (("trainable",), "mpl"), "trainable"),
    ("builtin", (("data", "name"), "digts"), "data.name"),
    ("builtin", (("space", "activation"), {"choice": ["relu", "tanhh"]}), "space.activation"),
    ("builtin", (("space", "optimizer"), "adamm"), "space.optimizer"),
    ("user", (("trainable",), "not a module:path"), "trainable"),
    ("user", (("space", "cond"), {"choice": [{"x": {"choice": [1, 2]}}, {"uniform": [0, 1]}]}), "space.cond.choice[1]"),
]


@st.composite
def conflicts(draw: st.DrawFn) -> Hostile:
    """Keys fine alone, wrong together: grid search of a continuous range, a grace period past max_epochs,
    several workers on a shared GPU, a built-in's unknown knob value."""
    base, (path, value), named = draw(st.sampled_from(_CONFLICTS))
    return Hostile("conflict", dump(_set(BASES[base], path, value), draw(_flow)), named)


CATEGORIES: dict[str, st.SearchStrategy[Hostile]] = {
    "wrong type": wrong_types(), "out of range": out_of_range(), "bad bounds": bad_bounds(),
    "non-finite": non_finite(), "empty choice": empty_choice(), "unknown key": unknown_keys(),
    "missing key": missing_keys(), "bad name": bad_names(), "not a mapping": not_a_mapping(),
    "not UTF-8": not_utf8(), "broken YAML": broken_yaml(), "YAML tag": yaml_tags(), "alias bomb": alias_bombs(),
    "huge number": huge_numbers(), "bad initial point": bad_initial_points(), "conflict": conflicts(),
}


def hostile_files() -> st.SearchStrategy[Hostile]:
    """Every category, about equally often."""
    return st.one_of(*CATEGORIES.values())


# ----------------------------------------------------------------------------------------------------------
# Running one


class RayStarted(Exception):
    """Raised by the fence: a bad file got as far as starting Ray or a run."""


@contextmanager
def ray_fenced() -> Iterator[list[str]]:
    """`ray.init` and tunerd's run entry points replaced by a recorder that refuses; yields what was called."""
    from unittest import mock

    import ray

    import tunerd.api
    import tunerd.runner

    calls: list[str] = []

    def refuse(name: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> None:
            calls.append(name)
            raise RayStarted(name)
        return called

    with mock.patch.object(ray, "init", refuse("ray.init")), \
            mock.patch.object(tunerd.api, "launch", refuse("tunerd.api.launch")), \
            mock.patch.object(tunerd.api, "resume", refuse("tunerd.api.resume")), \
            mock.patch.object(tunerd.runner, "launch", refuse("tunerd.runner.launch")):
        yield calls


def check_file(data: bytes, tmp_dir: Path, command: str = "launch") -> tuple[int, str]:
    """Write `data` to `tmp_dir/hostile.yaml` and run `tunerd COMMAND` on it in-process, Ray fenced off.

    Returns (exit status, what the user saw). An exception the CLI let escape is appended as its traceback;
    reaching Ray or a run returns RAY_STARTED."""
    from tunerd.cli import main

    if str(REPO) not in sys.path:  # the user trainable of USER is tests.fixtures.toy:quadratic
        sys.path.insert(0, str(REPO))
    path = Path(tmp_dir) / FILE_NAME
    path.write_bytes(data)
    with ray_fenced() as calls:
        result = CliRunner().invoke(main, [command, str(path)])
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "".join(traceback.format_exception(*result.exc_info))
    if calls:
        return RAY_STARTED, output + f"\n[fence] the CLI called {', '.join(calls)}"
    return result.exit_code, output


def names_path(output: str, path: str) -> bool:
    """The output names `path` (or a key below it) as a message's key path: `...: space.lr.uniform: ...`, its
    control characters escaped as Python writes them (a file must not drive the terminal it is checked in)."""
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in path)
    return re.search(r"(?:^|: )" + re.escape(shown) + r"(?=[.\[:])", output, re.M) is not None


def judge(hostile: Hostile, code: int, output: str, file: str) -> str | None:
    """Why this outcome breaks SPEC §1 "Errors" (None: it does not)."""
    if code == RAY_STARTED:
        return "a bad file started Ray or a run"
    if "Traceback" in output:
        return "a traceback"
    if code != 2:
        return f"exit status {code}, not 2"
    if len(output) > MAX_OUTPUT:
        return f"{len(output)} characters of output"
    if hostile.path and not names_path(output, hostile.path):
        return f"the message does not name {hostile.path!r}"
    if not hostile.path and file not in output:
        return "the message does not name the file"
    if hostile.phrase and hostile.phrase not in output:
        return f"the message does not say {hostile.phrase!r}"
    return None


def run_generated(count: int, folder: Path, seed: int = 0) -> list[dict[str, Any]]:
    """Draw `count` hostile files (reproducibly, from `seed`) and run each through `tunerd validate` and
    `tunerd launch`; one outcome per file (for benchmarks/reliability.py)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    outcomes: list[dict[str, Any]] = []

    @seeded(seed)
    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(hostile_files())
    def run(hostile: Hostile) -> None:
        results = [check_file(hostile.data, folder, command) for command in ("validate", "launch")]
        problems = [judge(hostile, code, output, str(folder / FILE_NAME)) for code, output in results]
        worst = next((i for i, problem in enumerate(problems) if problem), 0)
        outcomes.append({
            "category": hostile.category,
            "exit_code": results[worst][0],
            "named": not any(problem and "does not name" in problem for problem in problems),
            "traceback": any("Traceback" in output for _, output in results),
            "ray_started": any(code == RAY_STARTED for code, _ in results),
            "problem": problems[worst],
        })

    run()
    return outcomes
