"""Hostile experiment files (issue 6): a malformed file exits 2 with a message naming the key path or the file,
never a traceback, never Ray (SPEC §1 "Errors").

The property test draws 1,000 files a run from `tests/hostile_files.py` (16 kinds of breakage) and runs each
through `tunerd validate` and `tunerd launch` in-process. The draw is seeded by the date, so each day tries new
files and any failure can be replayed: TUNERD_HOSTILE_SEED=<the seed in the message> pytest ...
"""
from __future__ import annotations

import os
from collections import Counter
from datetime import date

import pytest
from hypothesis import HealthCheck, given, seed, settings

from tests.hostile_files import (
    BASES,
    CATEGORIES,
    FILE_NAME,
    MAX_OUTPUT,
    Hostile,
    check_file,
    dump,
    hostile_files,
    judge,
)

#: files tried per category in this run (the property test asserts the total)
TRIED: Counter[str] = Counter()
EXAMPLES = 1000
SEED = int(os.environ.get("TUNERD_HOSTILE_SEED", date.today().toordinal()))


def outcome(hostile: Hostile, tmp_path, command: str) -> str | None:
    code, output = check_file(hostile.data, tmp_path, command)
    why = judge(hostile, code, output, str(tmp_path / FILE_NAME))
    return None if why is None else f"tunerd {command}, {hostile.category}: {why}\n{output[-4000:]}"


def test_the_files_broken_below_are_valid(tmp_path):
    """Otherwise breaking them proves nothing."""
    for base in BASES.values():
        code, output = check_file(dump(base), tmp_path, "validate")
        assert code == 0, output


def test_hostile_files_exit_2_naming_the_problem(tmp_path):
    import ray

    ray_was_up = ray.is_initialized()  # another test module may have started one; this one must not

    @seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much, HealthCheck.large_base_example])
    @given(hostile_files())
    def check(hostile: Hostile) -> None:
        for command in ("validate", "launch"):
            failure = outcome(hostile, tmp_path, command)
            assert failure is None, f"TUNERD_HOSTILE_SEED={SEED}: {failure}\nfile: {hostile.data[:2000]!r}"
        TRIED[hostile.category] += 1

    check()
    assert sum(TRIED.values()) >= 1000, TRIED
    assert set(TRIED) == set(CATEGORIES), f"categories never drawn: {set(CATEGORIES) - set(TRIED)}"
    assert ray.is_initialized() is ray_was_up


# ----------------------------------------------------------------------------------------------------------
# The cases the issue names, and the bugs the property test found, spelled out

GOOD = """\
name: t
trainable: tests.fixtures.toy:quadratic
metric: loss
mode: min
space:
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  epochs: 2
"""
LR = "{loguniform: [1.0e-4, 1.0e-1]}"
LAUGHS = b'lol0: &lol0 "lol"\n' + b"".join(
    f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]\n".encode() for i in range(1, 10))
MERGES = "defs: [&m0 {a: 1, b: 2, c: 3}, " + ", ".join(
    f"&m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 9)}]}}" for i in range(1, 9)) + "]\n<<: *m8\n"


def good(old: str = "", new: str = "") -> bytes:
    return GOOD.replace(old, new).encode() if old else GOOD.encode()


CASES = [  # (id, file, key path named or "" for the file, phrase)
    ("name ../escape", good("name: t", "name: ../escape"), "name", "must start with a letter or digit"),
    ("name a/b", good("name: t", "name: a/b"), "name", "must start with a letter or digit"),
    ("name with an escaped control character", good("name: t", r'name: "x\x07"'), "name", "letters, digits"),
    ("name with a raw control character", good("name: t", "name: x\x07"), "", "character U+0007 is not allowed"),
    ("top level a list", b"- name: t\n- trainable: mlp\n", "", "but it is a list"),
    ("top level a scalar", b"42\n", "", "but it is a int"),
    ("top level text", b"just some text\n", "", "but it is a str"),
    ("empty file", b"", "", "but it is empty"),
    ("\\xff\\xfe bytes", b"\xff\xfe", "", "not UTF-8"),
    ("UTF-16 file", GOOD.encode("utf-16"), "", "not UTF-8"),
    ("billion laughs", LAUGHS + GOOD.encode(), "", "expands to more than"),
    ("merge-key bomb", (MERGES + GOOD).encode(), "", "expands to more than"),
    ("merge of its own mapping", good() + b"x: &a {<<: *a}\n", "", "includes its own mapping"),
    ("nesting 10,000 deep", good() + b"x: " + b"[" * 10_000 + b"]" * 10_000 + b"\n", "", "levels of nesting"),
    ("reversed bounds", good(LR, "{loguniform: [1e-1, 1e-4]}"), "space.lr.loguniform", "lower bound must be <"),
    ("nan bound", good(LR, "{uniform: [.nan, 1]}"), "space.lr.uniform", "must be finite"),
    ("infinite bound", good(LR, "{uniform: [0, .inf]}"), "space.lr.uniform", "must be finite"),
    ("empty choice", good(LR, "{choice: []}"), "space.lr.choice", "non-empty list"),
    ("epochs 1e400", good("epochs: 2", "epochs: 1e400"), "space.epochs", "out of range"),
    ("epochs 10**10000", good("epochs: 2", "epochs: 1" + "0" * 10_000), "space.epochs", "out of range"),
    ("bound 10**400", good(LR, "{uniform: [0, 1" + "0" * 400 + "]}"), "space.lr.uniform", "out of range"),
    ("unknown top-level key", good() + b"schedular: {name: asha}\n", "schedular", "did you mean 'scheduler'"),
    ("missing trainable", good("trainable: tests.fixtures.toy:quadratic\n", ""), "trainable",
     "required key is missing"),
    ("!!python/object/apply", good("name: t", 'name: !!python/object/apply:os.system ["echo hacked"]'), "name",
     "is not allowed"),
    ("!!python/name", good("name: t", "name: !!python/name:os.system"), "", "not valid YAML"),
    ("!!int that is not", good() + b"seed: !!int abc\n", "seed", "is not a valid int"),
    ("!!timestamp", good() + b"seed: !!timestamp 2001-12-14\n", "seed", "is not allowed"),
    ("a date that is not", good() + b"seed: 2001-13-45\n", "seed", "valid integer"),
    ("parameter name with a newline", good("  epochs: 2", '  "x\\n": 1'), "space.x\n", "parameter names must match"),
    ("key with an open bracket", good() + b"a[b: 1\n", "a[b", "unknown key"),
    ("storage with a NUL byte", good() + b'storage: "a\\0b"\n', "storage", "not a usable path"),
    ("data.path with a NUL byte", good() + b'data: {path: "a\\0b"}\n', "data.path", "not a usable path"),
    ("a 10 kB value aliased 50,000 times", good() + b"x: &big " + b"x" * 10_000 + b"\nseed: ["
     + b", ".join([b"*big"] * 50_000) + b"]\n", "seed", "valid integer"),
]


@pytest.mark.parametrize("command", ["validate", "launch"])
@pytest.mark.parametrize("data, path, phrase", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_named_hostile_files(tmp_path, capfd, data, path, phrase, command):
    failure = outcome(Hostile("named", data, path, phrase), tmp_path, command)
    assert failure is None, failure
    assert "hacked" not in capfd.readouterr().out


def test_a_python_tag_is_never_run(tmp_path):
    marker = tmp_path / "hacked"
    data = good("name: t", f'name: !!python/object/apply:os.system ["touch {marker}"]')
    for command in ("validate", "launch"):
        code, output = check_file(data, tmp_path, command)
        assert code == 2 and "is not allowed" in output, output
    assert not marker.exists()


def test_a_merge_key_overrides_as_yaml_says(tmp_path):
    """`<<` merges are plain YAML: the mapping's own keys win, and a merged key is no duplicate."""
    from tunerd import spec as speclib

    path = tmp_path / "merge.yaml"
    path.write_bytes(good() + b"stop: {<<: [{max_epochs: 3, time_budget_s: 60}], max_epochs: 4}\n")
    stop = speclib.load(path).spec.stop
    assert (stop.max_epochs, stop.time_budget_s) == (4, 60)


def test_output_stays_small(tmp_path):
    code, output = check_file(CASES[-1][1], tmp_path, "validate")
    assert code == 2 and len(output) < MAX_OUTPUT
