"""The trainable an experiment names: the one way tunerd imports a user's `package.module:function`, and the
check, made once when the file is loaded, that the trainable can run (its import; for the built-ins, the
models `init_from` names).

A user's module that fails to import fails here, before Ray starts, with one line: the module, the
exception and the line of the user's own file that raised it.
"""
from __future__ import annotations

import importlib
import os
import re
import sys
import sysconfig
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunerd.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from tunerd.spec import Experiment

#: `trainable: package.module:function`
TRAINABLE_REFERENCE = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<function>[A-Za-z_]\w*)$")


def is_reference(trainable: str) -> bool:
    """A user's trainable (`module:function`), not a built-in name."""
    return ":" in trainable


def _library_folders() -> tuple[str, ...]:
    """Where Python's standard library and installed packages live."""
    paths = sysconfig.get_paths()
    return tuple(str(Path(paths[key]).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib"))


def _in(file: str, folders: tuple[str, ...]) -> bool:
    return str(Path(file).resolve()).startswith(folders)


def _user_location(exc: BaseException) -> str | None:
    """`file:line` of the deepest frame of the traceback in the user's own code (not Python's import machinery,
    its standard library or an installed package); a SyntaxError's own location."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    not_users = (*_library_folders(), str(Path(__file__).resolve().parent))
    own = [frame for frame in traceback.extract_tb(exc.__traceback__)
           if not frame.filename.startswith("<") and not _in(frame.filename, not_users)]
    return f"{own[-1].filename}:{own[-1].lineno}" if own else None


def _import_failure(reference: str, module_name: str, exc: BaseException) -> UsageError:
    if isinstance(exc, ModuleNotFoundError) and exc.name and \
            (module_name == exc.name or module_name.startswith(f"{exc.name}.")):
        return UsageError(f"trainable {reference!r}: cannot import module {module_name!r} ({exc}); it must be "
                          "importable from the current folder or PYTHONPATH")
    where = _user_location(exc)
    return UsageError(f"trainable {reference!r}: importing module {module_name!r} raised {type(exc).__name__}: "
                      f"{exc}" + (f" (at {where})" if where else ""))


def import_user_trainable(reference: str) -> Callable[..., Any]:
    """The function `package.module:function` names. The current folder is importable (`tunerd` is a console
    script: it is not on the path otherwise), and a module outside site-packages is shipped to Ray's
    workers by value. Every failure is a UsageError naming the reference."""
    match = TRAINABLE_REFERENCE.match(reference)
    if match is None:
        raise UsageError(f"trainable {reference!r}: expected 'package.module:function' (a dotted module path, "
                         "one colon, a function name)")
    module_name, function_name = match["module"], match["function"]
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module raised while importing: whatever it raised
        raise _import_failure(reference, module_name, exc) from None
    if not hasattr(module, function_name):
        public = [name for name in dir(module) if not name.startswith("_")]
        raise UsageError(f"trainable {reference!r}: module {module_name!r} has no function {function_name!r}"
                         f"{did_you_mean(function_name, public)}")
    function = getattr(module, function_name)
    if not callable(function):
        raise UsageError(f"trainable {reference!r}: {module_name}.{function_name} is not a function "
                         f"(it is a {type(function).__name__})")
    if not _in(getattr(module, "__file__", None) or "", _library_folders()):
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    return function


def check_trainable(experiment: Experiment) -> None:
    """Import a user's trainable now, so that a wrong `module:function` fails before anything starts; for the
    built-ins, find every model `init_from` names (transfer learning) now rather than in every trial."""
    if is_reference(experiment.spec.trainable):
        try:
            import_user_trainable(experiment.spec.trainable)
        except UsageError as exc:  # name the file, as for every other problem of the file
            raise UsageError(f"{experiment.file or 'the experiment file'}: {exc}") from None
        return
    from tunerd.spec import knob_values

    sources = [(path, value) for path, value in knob_values(experiment.space).get("init_from", [])
               if isinstance(value, str)]
    if not sources:
        return
    from trainables.transfer import resolve_source  # reads model files: loads torch

    for path, value in sources:
        try:
            resolve_source(value, storage=experiment.storage)
        except ValueError as exc:
            raise UsageError(f"{path}: {exc}") from None
