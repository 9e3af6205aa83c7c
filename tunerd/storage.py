"""Where an experiment's files live: a folder, or a URI (s3://, gs://, ...) reached through pyarrow's file
systems — the same ones Ray Tune uses for `storage_path`, so the same URI and credentials work for both.

Ray Tune writes the trials (results, checkpoints, TensorBoard events) to the storage itself. tunerd's own
files (`spec.yaml`, `summary.json`, `leaderboard.csv`, `best/`) are written atomically to a local folder
first — the experiment folder itself, or for a URI a local mirror — and a URI gets a copy of each file
after it is written (at most every `publish_interval_s` for the files rewritten as trials report, and
always at the end), so a reader of the bucket sees the same files as a reader of a folder.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunerd.errors import UsageError, brief

#: where experiments live when neither --storage, $TUNERD_STORAGE nor the file says (SPEC §2)
DEFAULT_STORAGE = "./tunerd-results"


def chosen_storage(cli: str | None, from_file: str | None = None) -> tuple[str, str]:
    """Which storage is meant, and who said so: `--storage`, then `$TUNERD_STORAGE`, then the file's
    `storage`, then `./tunerd-results` (SPEC §2), as written (`file://` dropped). The one place that decides."""
    given = (("--storage", cli), ("$TUNERD_STORAGE", os.environ.get("TUNERD_STORAGE")),
             ("the file's storage", from_file))
    source, value = next(((source, value) for source, value in given if value),
                         ("the default storage", DEFAULT_STORAGE))
    return source, value.removeprefix("file://")


def resolve_storage(cli: str | None, from_file: str | None = None) -> str:
    """The storage `chosen_storage` picks, a folder made absolute (trials run in other folders), a URI as
    given. ValueError for a path no folder can have (a NUL byte, `~user` of no user)."""
    _, chosen = chosen_storage(cli, from_file)
    if is_uri(chosen):
        return chosen
    try:
        return str(Path(chosen).expanduser().resolve())
    except (OSError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{brief(chosen)} is not a usable path ({exc})") from None


def is_uri(storage: str) -> bool:
    return "://" in storage


def cache_root() -> Path:
    """Local copies of remote experiments: `$TUNERD_CACHE`, else ~/.cache/tunerd."""
    return Path(os.environ.get("TUNERD_CACHE") or "~/.cache/tunerd").expanduser()


def mirror_folder(uri: str) -> Path:
    """A readable, collision-free local folder for a storage URI (query parameters hashed, not spelled)."""
    base, _, query = uri.partition("?")
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", base.replace("://", "/")).strip("_")
    suffix = "-" + hashlib.sha1(query.encode()).hexdigest()[:8] if query else ""
    return cache_root() / "remote" / (readable + suffix)


def remote_filesystem(uri: str) -> tuple[Any, str]:
    """pyarrow's (file system, path) for `uri`, or a UsageError naming the storage and what went wrong."""
    import pyarrow.fs

    try:
        return pyarrow.fs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError/ValueError for unknown or bad URIs
        raise UsageError(f"storage {uri!r}: not a storage tunerd can reach ({exc})") from None


@dataclass
class ExperimentLocation:
    """One experiment's place: `where` (what users see and Ray gets) and `local` (where tunerd writes)."""

    storage: str
    name: str
    publish_interval_s: float = 10.0
    _published: dict[str, float] = field(default_factory=dict, repr=False)

    @property
    def remote(self) -> bool:
        return is_uri(self.storage)

    @property
    def where(self) -> str:
        if self.remote:
            base, _, query = self.storage.partition("?")
            return f"{base.rstrip('/')}/{self.name}" + (f"?{query}" if query else "")
        return str(Path(self.storage) / self.name)

    @property
    def local(self) -> Path:
        if self.remote:
            return mirror_folder(self.storage) / self.name
        return Path(self.storage) / self.name

    def uri_of(self, path: str) -> str:
        """A path Ray reports inside this storage (bucket/key for a URI storage), as a user can open it."""
        if not self.remote or "://" in path:
            return path
        return f"{self.storage.split('://', 1)[0]}://{path}"

    def _remote_path(self) -> tuple[Any, str]:
        filesystem, root = remote_filesystem(self.storage)
        return filesystem, f"{root.rstrip('/')}/{self.name}"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the experiment's lock while it is launched, run or resumed: a second `launch` or `resume` of
        the same name exits 2 at once instead of mixing two runs' trials in one folder.

        An exclusive `flock` on `STORAGE/.NAME.lock` (for a URI storage: beside the local mirror, so it
        guards this machine's runs only): the kernel releases it when its process ends however it ends, so a
        lock a killed driver left behind never blocks the next run. The file says who holds it."""
        import fcntl
        import socket

        if self.remote:
            root = mirror_folder(self.storage)
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(self.storage)
            check_folder_storage(root)  # a file, a missing parent, no write access: refused, nothing created
        path = root / f".{self.name}.lock"
        handle = open(path, "a+")  # noqa: SIM115 - held open for the whole run
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise UsageError(f"experiment '{self.name}' is in use: {holder} is launching, running or resuming "
                                 f"it (lock {path}); wait for it to end, or choose another --name") from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
            handle.flush()
            yield
        finally:
            handle.close()

    def check(self, *, overwrite: bool) -> None:
        """Refuse to mix two experiments' results, and a storage tunerd cannot write, before Ray starts."""
        exists_message = (f"experiment '{self.name}' already exists in {self.storage}: pass --resume to continue "
                          "it, --overwrite to replace it, or choose another --name")
        if not self.remote:
            folder = self.local
            if folder.exists() and any(folder.iterdir()) and not overwrite:
                raise UsageError(exists_message)
            check_folder_storage(folder.parent)
            return
        import pyarrow.fs

        filesystem, path = self._remote_path()
        try:
            found = filesystem.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
            if found and not overwrite:
                raise UsageError(exists_message)
            probe = f"{path}/.tunerd-write-test"
            with filesystem.open_output_stream(probe) as stream:
                stream.write(b"ok")
            filesystem.delete_file(probe)
        except OSError as exc:
            raise UsageError(f"storage {self.storage!r} cannot be written: {exc}") from None

    def create(self) -> None:
        """A fresh experiment (an `--overwrite`n one is removed only now, once the run can start)."""
        if self.local.exists():
            shutil.rmtree(self.local)
        self.local.mkdir(parents=True)
        if self.remote:
            filesystem, path = self._remote_path()
            filesystem.delete_dir_contents(path, missing_dir_ok=True)

    def publish(self, path: Path, *, force: bool = False) -> None:
        """Copy a file (or folder) tunerd just wrote under `local` to the URI; a no-op for a folder storage.

        Files rewritten on every report are copied at most every `publish_interval_s` unless `force`.
        """
        if not self.remote:
            return
        relative = path.relative_to(self.local).as_posix()
        now = time.monotonic()
        if not force and now - self._published.get(relative, -1e9) < self.publish_interval_s:
            return
        import pyarrow.fs

        filesystem, root = self._remote_path()
        target = f"{root}/{relative}"
        if path.is_dir():
            filesystem.delete_dir_contents(target, missing_dir_ok=True)
        pyarrow.fs.copy_files(str(path), target, source_filesystem=pyarrow.fs.LocalFileSystem(),
                              destination_filesystem=filesystem)
        self._published[relative] = now

    def publish_all(self) -> None:
        """Copy every file tunerd wrote, now (the end of a run, or an interruption)."""
        if not self.remote:
            return
        for child in sorted(self.local.iterdir()):
            self.publish(child, force=True)


def min_free_bytes() -> int:
    """What a storage folder must have free before trials start: `$TUNERD_MIN_FREE_MB` (default 200 MB)."""
    return int(float(os.environ.get("TUNERD_MIN_FREE_MB", "200")) * 2**20)


def check_folder_storage(storage: Path) -> None:
    """A storage folder that cannot take the experiment fails the run before any trial starts, not at the
    first checkpoint: it must be a writable folder, with free space, whose parent exists. The folder itself
    is created, but not a missing parent, which is a typo or a file system that is not mounted (tunerd would
    otherwise fill the disk beneath the mount point)."""
    parent = storage.absolute().parent
    if not storage.exists() and not parent.exists():
        raise UsageError(f"storage {storage}: its parent folder {parent} does not exist (a typo, or a file "
                         "system that is not mounted?); create it first")
    for path in (parent, storage):
        if path.exists() and not path.is_dir():
            raise UsageError(f"storage {storage}: {path} is a file, not a folder")
    try:
        storage.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=storage, prefix=".tunerd-write-test"):
            pass
    except OSError as exc:
        raise UsageError(f"storage {storage} is not writable: {exc.strerror or exc}") from None
    free, needed = shutil.disk_usage(storage).free, min_free_bytes()
    if free < needed:
        raise UsageError(f"storage {storage}: only {free / 2**20:.0f} MB free on its file system, tunerd needs "
                         f"{needed / 2**20:.0f} MB for checkpoints, results and event files (free some space, "
                         "choose another --storage, or set TUNERD_MIN_FREE_MB)")


def read_text(storage: str, relative: str) -> str | None:
    """A file under the storage (folder or URI), or None when it is not there."""
    data = read_bytes(storage, relative)
    return data.decode() if data is not None else None


def read_bytes(storage: str, relative: str) -> bytes | None:
    """A file under the storage (folder or URI) as bytes, or None when it is not there."""
    if not is_uri(storage):
        path = Path(storage) / relative
        return path.read_bytes() if path.is_file() else None
    filesystem, root = remote_filesystem(storage)
    try:
        with filesystem.open_input_stream(f"{root.rstrip('/')}/{relative}") as stream:
            return stream.read()
    except (FileNotFoundError, OSError):
        return None


def list_folders(storage: str) -> list[str]:
    """The names of the folders directly under the storage (the experiments), sorted."""
    return [name for name, folder in _entries(storage) if folder]


def list_files(storage: str, relative: str) -> list[str]:
    """The names of the files directly in a folder under the storage, sorted."""
    return [name for name, folder in _entries(storage, relative) if not folder]


def _entries(storage: str, relative: str = "") -> list[tuple[str, bool]]:
    """(name, is a folder) of what is directly in a folder under the storage, sorted by name."""
    if not is_uri(storage):
        root = Path(storage) / relative
        return sorted((p.name, p.is_dir()) for p in root.iterdir()) if root.is_dir() else []
    import pyarrow.fs

    filesystem, root = remote_filesystem(storage)
    where = f"{root.rstrip('/')}/{relative}".rstrip("/")
    found = filesystem.get_file_info(pyarrow.fs.FileSelector(where, allow_not_found=True))
    return sorted((info.base_name, info.type == pyarrow.fs.FileType.Directory) for info in found)
