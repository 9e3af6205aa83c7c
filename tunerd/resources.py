"""What one trial asks of the Ray cluster, whether the cluster can ever hold it, and how many fit at once.

A one-worker trial is one Tune actor with `resources.cpu` and `resources.gpu`. A multi-worker trial
(`resources.workers: N > 1`) is a Tune actor that only relays reports (it reserves no CPU, see
`trainables.distributed.DRIVER_RESOURCES`) plus N Ray Train workers with `resources.cpu` and
`resources.gpu` *each*, placed by Ray Train in a placement group of its own, outside Tune's accounting:
so tunerd caps the trials that run at once to the number whose workers fit in the cluster, or Tune would
start trials whose workers wait for one another's CPUs.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tunerd.spec import ResourcesSpec


@dataclass(frozen=True)
class Fit:
    """How a trial's workers fit in the cluster now (a one-worker trial is one worker)."""

    workers: int  # per trial
    slots: int  # workers the whole cluster holds at once
    largest: dict[str, float]  # the largest node's CPU and GPU

    @property
    def fits(self) -> bool:
        return self.slots >= self.workers

    @property
    def concurrent_trials(self) -> int:
        return max(1, self.slots // self.workers)


def worker_bundle(resources: ResourcesSpec) -> dict[str, float]:
    """One worker's resources (the whole trial's when `workers` is 1), as Ray names them."""
    return {"CPU": resources.cpu, "GPU": resources.gpu}


def fit(resources: ResourcesSpec, nodes: list[Mapping[str, Any]]) -> Fit:
    """How many of a trial's workers the alive `nodes` (`ray.nodes()` entries) hold: per node, as many
    bundles as each resource allows; a trial's workers may spread over nodes (Ray Train packs them)."""
    wanted = {kind: amount for kind, amount in worker_bundle(resources).items() if amount > 0}
    totals = [node.get("Resources", {}) for node in nodes if node.get("Alive")]
    # Ray counts resources in units of 1e-4: round before dividing, so 1.0 / 0.1 is 10, not 9
    slots = sum(min(math.floor(round(node.get(kind, 0) / amount, 4)) for kind, amount in wanted.items())
                for node in totals)
    largest = {kind: max((node.get(kind, 0) for node in totals), default=0) for kind in ("CPU", "GPU")}
    return Fit(resources.workers, slots, largest)


def misfit_message(resources: ResourcesSpec, found: Fit) -> str:
    """Why a trial can never start on this cluster, naming the keys to change."""
    if resources.workers == 1:
        return (f"resources: a trial asks for cpu {resources.cpu:g}, gpu {resources.gpu:g} but the largest node "
                f"of the Ray cluster has cpu {found.largest['CPU']:g}, gpu {found.largest['GPU']:g}")
    return (f"resources: a trial of resources.workers {resources.workers} asks for cpu {resources.cpu:g}, "
            f"gpu {resources.gpu:g} per worker (cpu {resources.workers * resources.cpu:g}, "
            f"gpu {resources.workers * resources.gpu:g} in all) but the Ray cluster holds {found.slots} such "
            f"worker{'s' if found.slots != 1 else ''} (largest node: cpu {found.largest['CPU']:g}, "
            f"gpu {found.largest['GPU']:g}); lower resources.workers or resources.cpu/gpu")


def max_concurrent(resources: ResourcesSpec, asked: int | None, nodes: list[Mapping[str, Any]], *,
                   model_based: bool = False) -> int | None:
    """Tune's `max_concurrent_trials`: what the file asks; for multi-worker trials also no more than the
    cluster holds workers for (at least 1: a cluster that may grow is only warned about).

    A model-based searcher (hyperopt, bayesopt) that is not capped gets the trials the cluster holds at once:
    Ray Tune lets such a searcher have a single pending trial unless it is capped (its ConcurrencyLimiter
    sets how many may wait), so trials would start one after another, each waiting for the previous one's
    actor. With the cap, a slot that frees is filled at once, with a suggestion that has seen every result.
    """
    if resources.workers == 1:
        if asked is None and model_based:
            return fit(resources, nodes).concurrent_trials
        return asked
    cap = fit(resources, nodes).concurrent_trials
    return cap if asked is None else min(asked, cap)
