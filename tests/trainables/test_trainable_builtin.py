"""The Ray-facing shell's choices (threads, device), checked without starting Ray."""
from __future__ import annotations

import pytest
import torch

from trainables import builtin


class FakeContext:
    def __init__(self, resources: dict[str, float]) -> None:
        self.resources = resources

    def get_assigned_resources(self) -> dict[str, float]:
        return self.resources


def test_outside_ray_one_thread_and_the_cpu(monkeypatch) -> None:
    monkeypatch.setattr(builtin.ray, "is_initialized", lambda: False)
    assert builtin.cpu_share() == 1
    assert builtin.trial_device() == torch.device("cpu")


@pytest.mark.parametrize("cpus, threads", [(0.5, 1), (1.0, 1), (2.0, 2), (3.0, 3)])
def test_threads_follow_the_trials_cpu_share(cpus: float, threads: int, monkeypatch) -> None:
    monkeypatch.setattr(builtin.ray, "is_initialized", lambda: True)
    monkeypatch.setattr(builtin.ray, "get_runtime_context", lambda: FakeContext({"CPU": cpus}))
    assert builtin.cpu_share() == threads


@pytest.mark.parametrize("gpu_ids, cuda, expect", [([0], True, "cuda"), ([], True, "cpu"), ([0], False, "cpu")])
def test_cuda_only_when_present_and_assigned(gpu_ids: list, cuda: bool, expect: str, monkeypatch) -> None:
    monkeypatch.setattr(builtin.ray, "is_initialized", lambda: True)
    monkeypatch.setattr(builtin.ray, "get_gpu_ids", lambda: gpu_ids)
    monkeypatch.setattr(builtin.torch.cuda, "is_available", lambda: cuda)
    assert builtin.trial_device().type == expect
