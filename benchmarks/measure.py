"""Measurements more than one benchmark takes."""
from __future__ import annotations

import contextlib
import resource
import sys
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak resident memory: VmHWM where Linux has it (getrusage's ru_maxrss survives exec,
    so a process started by a big one would report its parent's peak), else ru_maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024  # KiB on Linux, bytes on macOS
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
