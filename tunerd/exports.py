"""A trial's model out of the experiment: `best/` at the end of a run, and `tunerd export NAME --trial ID`
for any other trial (a point of the Pareto front that is not `best/`), written the same way.

Which checkpoint: of the checkpoints Ray kept for the trial (`checkpoint.keep`, and always its last), the
one whose report is the trial's best by the experiment's goal (`tunerd.results.beats`), read from the
trial's own `result.json` (each row that came with a checkpoint names its folder; the folders Ray deleted
are left out). Reads the storage,
folder or URI; no Ray session.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunerd.errors import UsageError, did_you_mean
from tunerd.objectives import Goal
from tunerd.storage import ExperimentLocation, read_text
from tunerd.trainable import is_reference

#: Ray Tune's per-trial results (one JSON object per report) and the key naming a report's checkpoint
RESULT_FILE = "result.json"
CHECKPOINT_KEY = "checkpoint_dir_name"


@dataclass(frozen=True)
class Exported:
    """What `export_trial` wrote: the folder, and for a built-in its test score and int8 copy's figures."""

    trial_id: str
    folder: Path
    checkpoint: str
    test: dict[str, Any] | None = None
    export: dict[str, Any] | None = None


def export_model(checkpoint_dir: Path, dest: Path, *, builtin: bool,
                 quantize: bool) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Write a checkpoint's model to `dest` (replaced): a built-in's `model.pt` + `model.json`, scored once on
    the test split (and its int8 copy with `quantize`); a user's checkpoint folder as it is. Returns the
    test score and the int8 figures (None for a user's trainable)."""
    if dest.exists():
        shutil.rmtree(dest)
    if not builtin:
        shutil.copytree(checkpoint_dir, dest)
        return None, None
    from trainables import evaluate_checkpoint, export_best

    export_best(checkpoint_dir, dest)
    test = evaluate_checkpoint(checkpoint_dir, split="test")
    if not quantize:
        return test, None
    from trainables.export import quantize_export

    return test, quantize_export(dest, split="test")


def best_checkpoint_name(rows: list[dict[str, Any]], goal: Goal) -> str | None:
    """The checkpoint folder of the trial's best report among those that came with one."""
    from tunerd.results import best_of

    return best_of(goal, ((row[CHECKPOINT_KEY], row) for row in rows if row.get(CHECKPOINT_KEY)))


def export_trial(storage: str, name: str, trial_id: str, dest: str | Path | None = None) -> Exported:
    """Export trial `trial_id` of experiment `name` as `best/` is exported, to `dest` (default: the
    experiment's `exports/trial_ID/`, in the local mirror for a URI storage)."""
    from tunerd.report import read_spec, read_summary

    summary = read_summary(storage, name)
    ids = [t.trial_id for t in summary.trials]
    if trial_id not in ids:
        raise UsageError(f"experiment {name!r} has no trial {trial_id!r}{did_you_mean(trial_id, ids)}; "
                         f"its trials: {', '.join(ids[:20])}{' ...' if len(ids) > 20 else ''}")
    spec = read_spec(storage, name)
    text = read_text(storage, f"{name}/trial_{trial_id}/{RESULT_FILE}") or ""
    location = ExperimentLocation(storage, name)
    kept = _kept_checkpoints(location, f"trial_{trial_id}")
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    chosen = best_checkpoint_name([row for row in rows if row.get(CHECKPOINT_KEY) in kept], summary.goal())
    if chosen is None:
        raise UsageError(f"trial {trial_id} of {name!r} has no checkpoint to export (it reported none: it failed or "
                         "was stopped before its first checkpoint)")
    target = Path(dest) if dest is not None else location.local / "exports" / f"trial_{trial_id}"
    builtin = not is_reference(str(spec.get("trainable", "")))
    quantize = bool((spec.get("export") or {}).get("quantize"))
    with _checkpoint_folder(location, f"trial_{trial_id}/{chosen}") as folder:
        test, export = export_model(folder, target, builtin=builtin, quantize=quantize)
    return Exported(trial_id, target, chosen, test, export)


def _kept_checkpoints(location: ExperimentLocation, trial: str) -> set[str]:
    """The checkpoint folders Ray kept for the trial (it deletes all but `checkpoint.keep` and the last)."""
    if not location.remote:
        folder = location.local / trial
        return {p.name for p in folder.glob("checkpoint_*") if p.is_dir()} if folder.is_dir() else set()
    import pyarrow.fs

    from tunerd.storage import remote_filesystem

    filesystem, root = remote_filesystem(location.storage)
    found = filesystem.get_file_info(pyarrow.fs.FileSelector(f"{root.rstrip('/')}/{location.name}/{trial}",
                                                             allow_not_found=True))
    return {info.base_name for info in found
            if info.type == pyarrow.fs.FileType.Directory and info.base_name.startswith("checkpoint_")}


@contextmanager
def _checkpoint_folder(location: ExperimentLocation, relative: str) -> Iterator[Path]:
    """The checkpoint folder on this machine: in place for a folder storage, else a temporary copy."""
    if not location.remote:
        folder = location.local / relative
        if not folder.is_dir():
            raise UsageError(f"checkpoint {folder} is gone (Ray keeps checkpoint.keep of them per trial)")
        yield folder
        return
    import pyarrow.fs

    from tunerd.storage import remote_filesystem

    filesystem, root = remote_filesystem(location.storage)
    with tempfile.TemporaryDirectory(prefix="tunerd-export-") as staging:
        pyarrow.fs.copy_files(f"{root.rstrip('/')}/{location.name}/{relative}", staging,
                              source_filesystem=filesystem, destination_filesystem=pyarrow.fs.LocalFileSystem())
        yield Path(staging)
