from __future__ import annotations

import json
import textwrap

import pytest

from trainables import BUILTINS, resolve_trainable, train_builtin


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    modules = {
        "tunerd_user_ok": "def train(config):\n    pass\nVALUE = 3\n",
        "tunerd_user_broken": "raise RuntimeError('boom')\n",
        "tunerd_user_needs_dep": "import tunerd_no_such_dependency\n",
    }
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_builtins_resolve_to_train_builtin() -> None:
    assert BUILTINS == ("cnn", "mlp", "rnn", "ensemble")
    for name in BUILTINS:
        assert resolve_trainable(name) is train_builtin


def test_module_function(user_modules) -> None:
    assert resolve_trainable("json:dumps") is json.dumps
    assert resolve_trainable("tunerd_user_ok:train").__name__ == "train"


@pytest.mark.parametrize("name, message", [
    ("cnm", "neither a built-in .*did you mean 'cnn'"),
    ("json.dumps", "nor 'package.module:function'"),
    ("json:", "malformed"),
    (":dumps", "malformed"),
    ("json:dumps:x", "malformed"),
    ("json..x:dumps", "malformed"),
    ("tunerd_no_such_pkg.mod:train", "module 'tunerd_no_such_pkg.mod' not found"),
    ("json.no_such_submodule:f", "module 'json.no_such_submodule' not found"),
    ("json:dumpss", "has no attribute 'dumpss' \\(did you mean 'dumps'\\?\\)"),
    ("tunerd_user_ok:VALUE", "tunerd_user_ok.VALUE is not callable \\(got int\\)"),
    ("tunerd_user_broken:train", "RuntimeError: boom"),
    ("tunerd_user_needs_dep:train", "tunerd_no_such_dependency"),
])
def test_bad_references_are_value_errors(name: str, message: str, user_modules) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_trainable(name)
