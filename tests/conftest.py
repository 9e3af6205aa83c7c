"""One Ray for the whole test session (ray.init costs ~5 s); it is stopped at the end, nothing else."""
from __future__ import annotations

import os
import socket
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nothing listens on now, for a Ray head or server a test starts (never Ray's defaults:
    they would collide with another Ray on the machine)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def ray_session():
    import ray

    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    started = not ray.is_initialized()
    if started:
        from tunerd.session import start_embedded_ray

        # as `tunerd launch` starts it: workers import the repository's modules, and what PYTHONPATH holds
        inherited = os.environ.get("PYTHONPATH")
        start_embedded_ray(num_cpus=2, pythonpath=os.pathsep.join([str(REPO), *([inherited] if inherited else [])]))
    yield ray
    if started:
        ray.shutdown()


def launch_from_repo(spec: Path, storage: Path) -> None:
    """Run the experiment file `spec` into `storage` quietly, from the repository root (where user trainables
    named `tests.fixtures.toy:...` import), for a module-scoped fixture that cannot use `monkeypatch`."""
    import tunerd

    here = os.getcwd()
    os.chdir(REPO)
    try:
        tunerd.launch(tunerd.load(spec, storage=str(storage)), quiet=True)
    finally:
        os.chdir(here)


@pytest.fixture
def in_repo(monkeypatch):
    """User trainables are named `tests.fixtures.toy:...`: importable from the repository root."""
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def write_spec(tmp_path):
    """Write a YAML experiment file from a dedented string; returns its path."""
    def write(text: str, name: str = "space.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write
