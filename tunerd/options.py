"""How to run an experiment, as opposed to what it is (the experiment file): the flags of `launch` and
`resume`, carried as one object from the command line (or a Python caller) to the runner."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    #: join the Ray cluster at this address (`auto`, HOST:PORT, ray://HOST:10001); None: an embedded Ray
    address: str | None = None
    #: a folder `storage` is mounted at the same path on every node of the cluster (NFS, EFS, one machine)
    shared_storage: bool = False
    #: CPUs of the embedded Ray (None: all of this machine's)
    num_cpus: int | None = None
    #: replace an experiment of the same name
    overwrite: bool = False
    #: no progress view, only the final result
    quiet: bool = False
    #: progress as one JSON object per event on stdout (for scripts), nothing else
    json_lines: bool = False

    @property
    def via_ray_client(self) -> bool:
        """`--address ray://...`: the whole driver runs on the cluster's head (see `tunerd.client`)."""
        return self.address is not None and self.address.startswith("ray://")

    def __post_init__(self) -> None:
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ValueError(f"num_cpus={self.num_cpus!r}: must be >= 1, or None (every CPU)")
