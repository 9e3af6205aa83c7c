"""Ray Jobs API submission: `launch --submit`, `jobs`, `logs`, `stop` (a thin adapter over Ray's client, and
over the job server's REST API for the list, so that `tunerd jobs` starts without Ray).

A submitted experiment runs `tunerd launch` as the job's entrypoint on the cluster (`--address auto`), with a
`working_dir` that holds only the experiment file and, when the trainable is a module of the current folder,
that module. Paths in the file are read on the cluster, so the storage must be absolute there (or a URI).

The token of a Ray 2.60 cluster (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token) goes into request
headers only: Ray's own loader puts it in its client's, `_token_header` in the list request's; nothing of it
is printed, logged or put in the job. The job's driver runs on the head, which has the cluster's token already.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tunerd import ray_internals
from tunerd.errors import TunerdError, UsageError
from tunerd.storage import chosen_storage

if TYPE_CHECKING:
    from tunerd.spec import Experiment

ADDRESS_VARIABLES = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")  # Ray's order: the API server's own first
#: `tunerd stop` sends SIGINT (tunerd's Ctrl-C: Ray Tune saves the experiment, summary.json says interrupted)
#: and gives the driver this long before Ray kills it
STOP_GRACE_S = 30
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 130}
TERMINAL = frozenset(EXIT_CODES)
METADATA_KEY = "tunerd_experiment"


# ----------------------------------------------------------------------------------------------------------
# Addresses and the client


def resolve_address(address: str | None) -> str:
    """`--address`, then RAY_API_SERVER_ADDRESS, then RAY_ADDRESS (Ray's order); it must be the job server's
    http(s) URL. A bare HOST:PORT or `auto` is refused: Ray would read it as the GCS address and look the
    dashboard up through the GCS, which takes 40 s to fail when nothing answers."""
    source = "--address"
    if not address:
        for variable in ADDRESS_VARIABLES:
            if os.environ.get(variable):
                source, address = f"${variable}", os.environ[variable]
                break
    if not address:
        raise UsageError("no job server address: pass --address http://HEAD:8265 (the Ray dashboard's port) "
                         "or set RAY_API_SERVER_ADDRESS")
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{source} {address!r}: expected the job server's URL, e.g. http://HEAD:8265 (the Ray "
                         "dashboard); a HOST:PORT of the cluster itself is what `launch --address` takes")
    try:
        _ = parts.port  # parsing the port raises for a bad one
    except ValueError:
        raise UsageError(f"{source} {address!r}: bad port") from None
    return address.rstrip("/")


class Jobs:
    """The job server of one cluster. Every Ray failure becomes one line (`TunerdError`/`UsageError`)."""

    def __init__(self, address: str | None, *, connect_timeout_s: float = 10) -> None:
        self.url = resolve_address(address)
        self.timeout_s = connect_timeout_s
        _check_reachable(self.url, connect_timeout_s)
        self._sdk: Any = None
        self._log_level = logging.getLogger("ray").getEffectiveLevel()  # the caller's (the CLI: errors only)

    @property
    def _client(self) -> Any:
        """Ray's JobSubmissionClient, made on first use: listing jobs (`tunerd jobs`) needs no Ray."""
        if self._sdk is None:
            from ray.job_submission import JobSubmissionClient

            # Ray quirks: importing Ray sets its logger to INFO, and the job client's modules pin their
            # loggers at INFO ("Uploading package ...", "WebSocket closed ..."): put the caller's level back
            for name in ("ray", "ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk"):
                logging.getLogger(name).setLevel(self._log_level)
            ray_internals.use_token_if_present()
            with self._errors(), _without_address_variables():
                self._sdk = JobSubmissionClient(self.url)
        return self._sdk

    @contextlib.contextmanager
    def _errors(self, job_id: str | None = None) -> Iterator[None]:
        """Ray's exceptions (with their multi-line advice, or a traceback) as one line a user can act on."""
        import requests
        from ray.exceptions import AuthenticationError

        try:
            yield
        except AuthenticationError as exc:
            why = "no token was sent" if "Missing" in str(exc) else "the token was not accepted"
            raise TunerdError(f"the job server at {self.url} refused the request ({why}): put the cluster's token "
                              "in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token") from None
        except (ConnectionError, requests.exceptions.RequestException) as exc:
            raise TunerdError(f"cannot reach the Ray job server at {self.url} ({type(exc).__name__}): is the "
                              "cluster up with its dashboard on (ray start --head --dashboard-host=...)?") from None
        except RuntimeError as exc:
            if job_id is not None and "status code 404" in str(exc):
                raise UsageError(f"no job {job_id!r} at {self.url} (`tunerd jobs --address {self.url}` lists "
                                 "them)") from None
            raise TunerdError(f"the job server at {self.url}: {exc}") from None

    # -- the calls ---------------------------------------------------------------------------------------

    def submit(self, submission: Submission) -> str:
        with self._errors():
            return self._client.submit_job(entrypoint=submission.entrypoint, runtime_env=submission.runtime_env,
                                           metadata=submission.metadata)

    def list_jobs(self) -> list[JobRow]:
        """The cluster's jobs, oldest first, from the job server's REST API (`GET /api/jobs/`, what Ray's
        client calls too), without importing Ray: `tunerd jobs` answers at once."""
        import urllib.error
        import urllib.request

        request = urllib.request.Request(f"{self.url}/api/jobs/", headers=_token_header())
        try:
            with urllib.request.urlopen(request, timeout=max(self.timeout_s, 30)) as response:
                details = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                why = "no token was sent" if exc.code == 401 else "the token was not accepted"
                raise TunerdError(f"the job server at {self.url} refused the request ({why}): put the cluster's "
                                  "token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token") from None
            raise TunerdError(f"the job server at {self.url}: HTTP {exc.code} {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise TunerdError(f"cannot reach the Ray job server at {self.url} ({type(exc).__name__}): is the "
                              "cluster up with its dashboard on (ray start --head --dashboard-host=...)?") from None
        return sorted((JobRow.of(d) for d in details), key=lambda row: row.start_ms or 0)

    def info(self, job_id: str) -> Any:
        with self._errors(job_id):
            return self._client.get_job_info(job_id)

    def logs(self, job_id: str) -> str:
        with self._errors(job_id):
            return self._client.get_job_logs(job_id)

    def follow(self, job_id: str, write: Callable[[str], None]) -> Any:
        """Stream the job's log (from its start) until the job ends; returns its final details."""
        self.info(job_id)  # an unknown id is one clear line, not a websocket error
        written = [0]

        async def tail() -> None:
            async for chunk in self._client.tail_job_logs(job_id):
                write(chunk)
                written[0] += len(chunk)

        try:
            asyncio.run(tail())
        except Exception:  # the websocket failed or dropped; the job goes on: poll, then print the rest
            pass
        info = self.wait(job_id, timeout_s=None)
        rest = self.logs(job_id)[written[0]:]
        if rest:
            write(rest)
        return info

    def stop(self, job_id: str, *, wait_s: float) -> tuple[bool, Any]:
        """Ask the job to stop; returns (was it running, its details after up to `wait_s` seconds)."""
        with self._errors(job_id):
            was_running = self._client.stop_job(job_id)
        return was_running, self.wait(job_id, timeout_s=wait_s)

    def wait(self, job_id: str, *, timeout_s: float | None) -> Any:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            info = self.info(job_id)
            if str(info.status) in TERMINAL or (deadline is not None and time.monotonic() >= deadline):
                return info
            time.sleep(1)


def exit_code(info: Any) -> int:
    """0 SUCCEEDED, 130 STOPPED, FAILED: tunerd's own status on the cluster when it was 2 or 130, else 1."""
    status = str(info.status)
    if status == "FAILED" and getattr(info, "driver_exit_code", None) in (2, 130):
        return int(info.driver_exit_code)
    return EXIT_CODES.get(status, 1)


@dataclass(frozen=True)
class JobRow:
    """One line of `tunerd jobs`."""

    job_id: str
    status: str
    start_ms: int | None
    what: str

    @classmethod
    def of(cls, details: dict[str, Any]) -> JobRow:
        """From one job of the REST API's list (Ray's JobDetails as JSON)."""
        metadata = details.get("metadata") or {}
        what = metadata.get(METADATA_KEY) or _shorten(details.get("entrypoint") or "", 48)
        return cls(details.get("submission_id") or details.get("job_id") or "?", str(details.get("status")),
                   details.get("start_time"), what)

    @property
    def started(self) -> str:
        if not self.start_ms:
            return "-"
        return datetime.fromtimestamp(self.start_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _token_header() -> dict[str, str]:
    """The cluster's token as Ray's clients send it (`Authorization: Bearer ...`), from the sources Ray's
    token authentication documents, in its order: RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names,
    ~/.ray/auth_token. None is sent when RAY_AUTH_MODE turns authentication off. The token goes into this
    one request header and nowhere else."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if not token:
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
        try:
            token = path.read_text().strip()
        except OSError:
            token = ""
    return {"Authorization": f"Bearer {token}"} if token else {}


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _check_reachable(url: str, timeout_s: float) -> None:
    """Ray's client sends its first request without a timeout: an address that drops packets would hang for
    minutes. A plain TCP connect with a timeout answers first."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or type(exc).__name__)
        raise TunerdError(f"cannot reach the Ray job server at {url} ({reason}): is the cluster up with its "
                          "dashboard on (ray start --head --dashboard-host=...)?") from None


@contextlib.contextmanager
def _without_address_variables() -> Iterator[None]:
    """Ray quirk: JobSubmissionClient lets RAY_API_SERVER_ADDRESS / RAY_ADDRESS override the address it is
    given (ray.dashboard.utils.get_address_for_submission_client), so `--address` would lose to a stale
    variable. The URL is resolved by `resolve_address` already: hide the variables while the client reads them."""
    saved = {name: os.environ.pop(name) for name in ADDRESS_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


# ----------------------------------------------------------------------------------------------------------
# What is submitted


@dataclass(frozen=True)
class Submission:
    """The job: its command line, its runtime_env (the working_dir to ship) and tunerd's metadata."""

    entrypoint: str
    working_dir: Path
    shipped: list[str]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def runtime_env(self) -> dict[str, Any]:
        # SIGINT is tunerd's Ctrl-C: Ray Tune stops the trials and saves the experiment, summary.json says
        # `interrupted`. Ray's default SIGTERM would kill the driver mid-write. Both variables are read by the
        # job's supervisor actor, which runs in this runtime_env.
        return {"working_dir": str(self.working_dir),
                "env_vars": {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": str(STOP_GRACE_S)}}


def cluster_storage(experiment: Experiment, storage: str | None) -> str:
    """The storage the job writes to, as the user wrote it (checked on the cluster, not here).

    A relative path would be resolved in the job's working folder, a temporary copy on the head that Ray
    deletes: refuse it. `~` is left for the cluster to expand (its user's home).
    """
    from_file = experiment.raw.get("storage")
    source, value = chosen_storage(storage, from_file if isinstance(from_file, str) else None)
    if "://" in value or value.startswith("~") or Path(value).is_absolute():
        return value
    raise UsageError(f"--submit: {source} {value!r} is a relative path; on the cluster it would land in the "
                     "job's temporary working folder on the head and be lost. Pass --storage with an absolute "
                     "path every node of the cluster can reach (or a URI), or set one as `storage:` in the file")


def check_submittable(experiment: Experiment) -> None:
    """Paths the file names are read on the cluster: a relative data.path would not be found there."""
    data = experiment.raw.get("data")
    path = data.get("path") if isinstance(data, dict) else None
    if isinstance(path, str) and not (path.startswith("~") or Path(path).is_absolute()):
        raise UsageError(f"--submit: data.path {path!r} is relative; the job reads it on the cluster, where only "
                         "the experiment file and the trainable's module are shipped: give an absolute path the "
                         "cluster can read")


def launch_options(*, storage: str, overrides: tuple[str, ...] = (), name: str | None = None,
                   overwrite: bool = False, quiet: bool = False, shared_storage: bool = False) -> list[str]:
    """The options of `tunerd launch` as the cluster runs it: the same overrides, joining the cluster it runs
    on (`--address auto`: inside a job Ray points that at the job's own cluster)."""
    args = ["--address", "auto", "--storage", storage]
    for item in overrides:
        args += ["--set", item]
    if name:
        args += ["--name", name]
    if overwrite:
        args.append("--overwrite")
    if quiet:
        args.append("--quiet")
    if shared_storage:
        args.append("--shared-storage")
    return args


def check_python(python: str | None) -> str:
    """The interpreter of the job's entrypoint: an absolute path (a job does not see this shell's PATH)."""
    python = python or sys.executable
    if not os.path.isabs(python):
        raise UsageError(f"--python {python!r}: give the absolute path of the cluster's Python (where tunerd is "
                         "installed), e.g. /opt/venv/bin/python")
    return python


def module_source(trainable: str, cwd: Path) -> Path | None:
    """The file or package folder of a `module:function` trainable when it lives in `cwd` (else None: it
    must then be importable on the cluster, as the built-ins are)."""
    if ":" not in trainable:
        return None
    top = trainable.partition(":")[0].split(".")[0]
    if (cwd / f"{top}.py").is_file():
        return cwd / f"{top}.py"
    if (cwd / top).is_dir():
        return cwd / top
    return None


@contextlib.contextmanager
def prepare(experiment: Experiment, spec_path: str, options: list[str], *, python: str,
            cwd: Path | None = None) -> Iterator[Submission]:
    """A temporary working_dir with only the experiment file and the user's module (never the whole cwd,
    which may hold data, results and virtual environments); removed once the job is submitted."""
    cwd = cwd or Path.cwd()
    with tempfile.TemporaryDirectory(prefix="tunerd-job-") as folder:
        root = Path(folder)
        spec_name = Path(spec_path).name
        shutil.copyfile(spec_path, root / spec_name)
        shipped = [spec_name]
        source = module_source(experiment.spec.trainable, cwd)
        if source is not None and source.is_file():
            shutil.copyfile(source, root / source.name)
            shipped.append(source.name)
        elif source is not None:
            shutil.copytree(source, root / source.name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
            shipped.append(source.name + "/")
        # `python -m tunerd.cli`, not the `tunerd` script: the job's shell has the cluster's PATH, not this one's
        entrypoint = shlex.join([python, "-m", "tunerd.cli", "launch", spec_name, *options])
        yield Submission(entrypoint=entrypoint, working_dir=root, shipped=shipped,
                         metadata={METADATA_KEY: experiment.name})


@dataclass(frozen=True)
class Submitted:
    """What `launch --submit` did: the job (None for a dry run), where it went, what it runs."""

    job_id: str | None
    url: str
    entrypoint: str
    shipped: list[str]
    where: str


def submit(experiment: Experiment, spec_path: str, address: str, *, storage: str | None = None,
           overrides: tuple[str, ...] = (), name: str | None = None, overwrite: bool = False,
           quiet: bool = False, shared_storage: bool = False, python: str | None = None,
           dry_run: bool = False) -> Submitted:
    """Submit a validated experiment as a Ray job (`dry_run`: check everything, contact nothing)."""
    url = resolve_address(address)
    target = cluster_storage(experiment, storage)
    check_submittable(experiment)
    options = launch_options(storage=target, overrides=overrides, name=name, overwrite=overwrite, quiet=quiet,
                             shared_storage=shared_storage)
    interpreter = check_python(python)
    client = None if dry_run else Jobs(url)
    with prepare(experiment, spec_path, options, python=interpreter) as submission:
        job_id = client.submit(submission) if client is not None else None
    return Submitted(job_id, url, submission.entrypoint, submission.shipped,
                     f"{target.rstrip('/')}/{experiment.name}")
