"""Batch augmentation: off is identity; shifts, flips, noise and token dropout as documented; seeded."""
from __future__ import annotations

import pytest
import torch

from trainables.augment import augment_batch


def gen(seed: int = 0, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def images(n: int = 64, size: int = 16) -> torch.Tensor:
    x = torch.zeros(n, 1, size, size)
    x[:, :, size // 2, size // 2] = 1.0  # one bright pixel in the middle
    return x


BATCHES = {
    "image": lambda: images(),
    "tabular": lambda: torch.randn(32, 5, generator=gen(9)),
    "text": lambda: torch.randint(2, 100, (32, 12), generator=gen(9)),
}


@pytest.mark.parametrize("kind", sorted(BATCHES))
def test_strength_zero_returns_the_batch_itself(kind: str) -> None:
    x = BATCHES[kind]()
    assert augment_batch(x, kind=kind, strength=0.0, generator=gen(), flips=True) is x


@pytest.mark.parametrize("kind", sorted(BATCHES))
def test_a_new_tensor_of_the_same_shape_dtype_and_device_reproducible_by_seed(kind: str) -> None:
    x = BATCHES[kind]()
    before = x.clone()
    a = augment_batch(x, kind=kind, strength=1.0, generator=gen(1), flips=True)
    b = augment_batch(x, kind=kind, strength=1.0, generator=gen(1), flips=True)
    c = augment_batch(x, kind=kind, strength=1.0, generator=gen(2), flips=True)
    assert a.shape == x.shape and a.dtype == x.dtype and a.device == x.device and a is not x
    assert torch.equal(a, b) and not torch.equal(a, c) and torch.equal(x, before)


def test_shifts_move_content_by_at_most_strength_w_over_8_with_zero_fill() -> None:
    x = images(n=200, size=16)
    out = augment_batch(x, kind="image", strength=1.0, generator=gen(), flips=False)  # up to 2 pixels
    flat = out.flatten(1).argmax(dim=1)
    rows, cols = flat // 16 - 8, flat % 16 - 8
    assert rows.abs().max() == 2 and cols.abs().max() == 2
    assert (rows != 0).float().mean() > 0.5 and set(rows.tolist()) == {-2, -1, 0, 1, 2}
    full = augment_batch(torch.ones(200, 1, 16, 16), kind="image", strength=1.0, generator=gen(), flips=False)
    assert 0 <= full.min() and full.max() <= 1  # noise clipped to [0, 1]
    dark_rows = (full.mean(dim=(1, 3)) < 0.5).sum(dim=1)  # a zero-filled edge after a vertical shift
    assert torch.equal(dark_rows, rows.abs())
    small = augment_batch(images(n=200, size=8), kind="image", strength=0.01, generator=gen(), flips=False)
    assert (small.flatten(1).argmax(dim=1) // 8 - 4).abs().max() == 1  # never less than one pixel


def test_flips_only_when_allowed() -> None:
    x = torch.zeros(400, 1, 32, 32)
    x[..., :8] = 1.0  # bright on the left
    left = lambda out: out[..., :16].mean(dim=(1, 2, 3)) > out[..., 16:].mean(dim=(1, 2, 3))  # noqa: E731
    kept = augment_batch(x, kind="image", strength=0.1, generator=gen(), flips=False)
    assert left(kept).all()
    flipped = augment_batch(x, kind="image", strength=0.1, generator=gen(), flips=True)
    assert 0.4 < (~left(flipped)).float().mean() < 0.6


def test_image_noise_has_the_documented_sd() -> None:
    x = torch.full((64, 3, 8, 8), 0.5)
    out = augment_batch(x, kind="image", strength=2.0, generator=gen(), flips=False)
    inside = out[..., 3:5, 3:5]  # shifts of up to 2 pixels never reach the centre with zeros
    assert inside.std().item() == pytest.approx(0.1, rel=0.1)


def test_tabular_noise_has_the_documented_sd() -> None:
    out = augment_batch(torch.zeros(2000, 10), kind="tabular", strength=3.0, generator=gen(), flips=False)
    assert out.std().item() == pytest.approx(0.3, rel=0.05) and abs(out.mean().item()) < 0.01


@pytest.mark.parametrize("strength, rate", [(1.0, 0.1), (2.5, 0.25), (20.0, 0.5)])
def test_token_dropout_rate_and_padding_untouched(strength: float, rate: float) -> None:
    x = torch.randint(2, 1000, (500, 40), generator=gen(5))
    x[:, 30:] = 0  # padding
    out = augment_batch(x, kind="text", strength=strength, generator=gen(), flips=False)
    changed = out != x
    assert (out[changed] == 1).all() and not changed[:, 30:].any()
    assert changed[:, :30].float().mean().item() == pytest.approx(rate, abs=0.01)


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="kind"):
        augment_batch(torch.zeros(2, 3), kind="audio", strength=1.0, generator=gen(), flips=False)
    with pytest.raises(ValueError, match=">= 0"):
        augment_batch(torch.zeros(2, 3), kind="tabular", strength=-1.0, generator=gen(), flips=False)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        augment_batch(torch.zeros(2, 8, 8), kind="image", strength=1.0, generator=gen(), flips=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("kind", sorted(BATCHES))
def test_cuda_batches_stay_on_the_gpu_and_match_the_cpu(kind: str) -> None:
    x = BATCHES[kind]()
    on_cpu = augment_batch(x, kind=kind, strength=1.0, generator=gen(3), flips=True)
    on_gpu = augment_batch(x.cuda(), kind=kind, strength=1.0, generator=gen(3), flips=True)
    assert on_gpu.device.type == "cuda" and torch.allclose(on_gpu.cpu(), on_cpu)
    cuda_gen = augment_batch(x.cuda(), kind=kind, strength=1.0, generator=gen(3, "cuda"), flips=True)
    assert cuda_gen.device.type == "cuda" and cuda_gen.shape == x.shape
