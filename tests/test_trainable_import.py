"""The one importer of a user's `package.module:function` (tunerd.trainable): every failure is a usage error
(exit 2) naming the reference, and a module that raises while importing names the user's own file:line."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from trainables.catalog import BUILTINS
from tunerd.errors import UsageError
from tunerd.trainable import import_user_trainable, is_reference

MODULES = {
    "tunerd_user_ok": "def train(config):\n    pass\nVALUE = 3\n",
    "tunerd_user_broken": "import json\n\nSETTINGS = json.loads('{not json')\n",
    "tunerd_user_raises": "x = 1\nraise RuntimeError('boom')\n",
    "tunerd_user_needs_dep": "import tunerd_no_such_dependency\n",
    "tunerd_user_syntax": "def train(config)\n    pass\n",
}


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_builtins_are_not_references() -> None:
    assert BUILTINS == ("cnn", "mlp", "rnn", "ensemble")
    assert not any(is_reference(name) for name in BUILTINS) and is_reference("pkg.mod:train")


def test_module_function(user_modules) -> None:
    assert import_user_trainable("json:dumps") is json.dumps
    assert import_user_trainable("tunerd_user_ok:train").__name__ == "train"


@pytest.mark.parametrize("name, message", [
    ("json.dumps", "expected 'package.module:function'"),
    ("json:", "expected 'package.module:function'"),
    (":dumps", "expected 'package.module:function'"),
    ("json:dumps:x", "expected 'package.module:function'"),
    ("json..x:dumps", "expected 'package.module:function'"),
    ("tunerd_no_such_pkg.mod:train", "cannot import module 'tunerd_no_such_pkg.mod' .*current folder or PYTHONPATH"),
    ("json.no_such_submodule:f", "cannot import module 'json.no_such_submodule'"),
    ("json:dumpss", "has no function 'dumpss' \\(did you mean 'dumps'\\?\\)"),
    ("tunerd_user_ok:VALUE", "tunerd_user_ok.VALUE is not a function \\(it is a int\\)"),
    ("tunerd_user_needs_dep:train", "importing module 'tunerd_user_needs_dep' raised ModuleNotFoundError: No "
                                    "module named 'tunerd_no_such_dependency' \\(at .*tunerd_user_needs_dep.py:1\\)"),
])
def test_bad_references_are_usage_errors(name: str, message: str, user_modules) -> None:
    with pytest.raises(UsageError, match=message):
        import_user_trainable(name)


@pytest.mark.parametrize("module, exception, line", [
    ("tunerd_user_raises", "RuntimeError: boom", 2),
    # raised inside the json library: the line is the user's call, not json's
    ("tunerd_user_broken", "JSONDecodeError: Expecting property name", 3),
    ("tunerd_user_syntax", "SyntaxError: expected ':'", 1),
])
def test_a_module_that_raises_while_importing_names_the_users_file_and_line(user_modules, module, exception, line):
    with pytest.raises(UsageError) as info:
        import_user_trainable(f"{module}:train")
    message = str(info.value)
    assert f"importing module {module!r} raised {exception}" in message
    assert message.endswith(f"(at {user_modules / module}.py:{line})"), message


def test_the_command_line_exits_2_with_one_line_before_ray_starts(tmp_path):
    (tmp_path / "mytrain.py").write_text("import math\n\nSCALE = math.log(0)\n\ndef train(config):\n    pass\n")
    (tmp_path / "exp.yaml").write_text("name: x\ntrainable: mytrain:train\nmetric: loss\nmode: min\n"
                                       "space: {x: {uniform: [0, 1]}}\n")
    for command in ("validate", "launch"):
        done = subprocess.run([sys.executable, "-m", "tunerd.cli", command, "exp.yaml", "--storage", "r"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip() == (f"error: exp.yaml: trainable 'mytrain:train': importing module 'mytrain' "
                                       f"raised ValueError: math domain error (at {tmp_path}/mytrain.py:3)")
        assert not (tmp_path / "r").exists()  # nothing started
