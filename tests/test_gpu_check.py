"""benchmarks/gpu_check.py without a GPU: its nvidia-smi sampler (against a stand-in `nvidia-smi`), its
overrides (valid for the quickstart file), and how it says the GPU half is skipped."""
from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An `nvidia-smi` that answers the two queries the sampler makes, with the GPU busier every call."""
    script = tmp_path / "bin" / "nvidia-smi"
    script.parent.mkdir()
    counter = tmp_path / "calls"
    script.write_text(f"""#!/bin/sh
case "$1" in
  --query-gpu=*) n=$(cat {counter} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {counter}
                 echo "0, $((1000 + n * 100)), 81559, $((n * 10 % 100))" ;;
  --query-compute-apps=*) echo "4242, 512"; echo "4343, [N/A]" ;;
  *) exit 9 ;;
esac
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return script


def test_sampler_reads_memory_and_utilisation_in_the_background(gpu_check, fake_nvidia_smi):
    sampler = gpu_check.GpuSampler(interval_s=0.1)
    assert sampler.available()
    with sampler:
        time.sleep(0.8)
    report = sampler.report()
    assert report["samples"] >= 3 and not report["errors"]
    assert report["memory_total_mib"] == 81559
    assert report["peak_memory_used_mib"] == 1000 + 100 * report["samples"]
    assert report["utilization_max"] > 0
    assert report["process_peak_memory_mib"] == {4242: 512.0}  # "[N/A]" skipped, not a crash


def test_sampler_survives_a_failing_nvidia_smi(gpu_check, tmp_path, monkeypatch):
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with gpu_check.GpuSampler(interval_s=0.1) as sampler:
        time.sleep(0.3)
    report = sampler.report()
    assert report["samples"] == 0 and "NVIDIA-SMI has failed" in report["errors"][0]


def test_overrides_are_valid_for_the_quickstart(gpu_check, in_repo):
    from tunerd import api

    experiment = api.load(gpu_check.QUICKSTART, gpu_check.overrides(epochs=2, trials=4, cpu=1, gpu=0.25))
    assert experiment.trial_count == 4 and experiment.spec.resources.gpu == 0.25
    assert experiment.spec.scheduler.name == "fifo" and experiment.spec.stop.max_epochs == 2


def test_without_cuda_the_gpu_half_is_skipped_with_the_reason(gpu_check):
    import torch

    usable, what = gpu_check.cuda_status()
    assert usable == torch.cuda.is_available()
    if not usable:
        assert what.startswith("CUDA is not available")
