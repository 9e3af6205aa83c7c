"""Is Ray Tune's saved state of an experiment whole? Checked before `tunerd resume` restores from it.

Ray Tune (2.60) writes its saved state (`experiment_state-SESSION.json`: the trials; `search_gen_state-*.json`
and `searcher-state-*.pkl`: the search) into a staging folder and copies it into the storage in place, every
few seconds. A driver killed during that copy leaves half a file behind. `Tuner.restore` then does not fail:
it cannot read the trials, and `fit` runs a new one-trial experiment in the old one's folder, which tunerd
would have recorded as finished with half its trials (found by the soak, `benchmarks/reliability.py
--soak`). So the newest files (the ones Ray restores from: the greatest name) are read first: the JSON
parsed, the pickles walked opcode by opcode (`pickletools`: their structure, nothing built or run).
"""
from __future__ import annotations

import json
import pickletools

from tunerd.errors import UsageError
from tunerd.storage import list_files, read_bytes

#: Ray Tune's state files, by name (whatever their suffix says, each is JSON or a pickle: `_whole` looks)
STATE_FILES = (("experiment_state-", ".json"), ("search_gen_state-", ".json"), ("searcher-state-", ".pkl"),
               ("basic-variant-state-", ".json"))


def damaged_state(storage: str, name: str) -> tuple[str, str] | None:
    """(file, what is wrong) for the first of the newest state files that is not whole, or None."""
    files = list_files(storage, name)
    for prefix, suffix in STATE_FILES:
        candidates = [f for f in files if f.startswith(prefix) and f.endswith(suffix)]
        if candidates:
            newest = max(candidates)  # as Ray picks it (`_load_newest_checkpoint`, `_find_newest_experiment_...`)
            why = _not_whole(read_bytes(storage, f"{name}/{newest}") or b"")
            if why is not None:
                return newest, why
    return None


def _not_whole(data: bytes) -> str | None:
    """What is wrong with a state file's bytes (a pickle: Ray's own files and most searchers'; JSON: the
    experiment state, and tunerd's bayesopt searcher), or None when it is whole."""
    pickled = data[:1] == b"\x80"  # protocol 2 and later start so; JSON never does
    try:
        if pickled:
            for _ in pickletools.genops(data):
                pass
        else:
            json.loads(data)
    except ValueError as exc:
        return f"{'a broken pickle' if pickled else 'not valid JSON'} ({exc})"
    return None


def check_state(storage: str, name: str) -> None:
    """A UsageError naming the damaged file, what is intact and how to go on, when Ray's state is not whole."""
    found = damaged_state(storage, name)
    if found is None:
        return
    file, why = found
    raise UsageError(
        f"{storage.rstrip('/')}/{name}/{file} is damaged: {why}. Ray Tune writes its saved state in place, and "
        "the driver was stopped while it did (kill -9, a crash, a full disk): the experiment cannot be resumed. "
        "Its trials and results are intact (summary.json, leaderboard.csv, each trial's folder and checkpoints); "
        f"to go on from them, launch a new experiment with search.warm_start: [{name}]")
