"""Training-time augmentation of one batch, on whatever device the batch is on (the `augment` knob).

Random draws come from the trial's `generator` on its own device and are then moved to the batch's, so a
seed gives the same augmentation on the CPU and on a GPU, and a resumed trial repeats it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.data.text import PAD_ID, UNK_ID

KINDS = ("image", "tabular", "text")


def augment_batch(x: Tensor, *, kind: str, strength: float, generator: torch.Generator, flips: bool) -> Tensor:
    """A randomly perturbed copy of batch `x` (same shape, dtype and device); `strength` 0 returns `x` itself.

    - image (N, C, H, W) in [0, 1]: each sample shifted by whole pixels, up to max(1, round(strength * W / 8))
      in each direction (zero fill); flipped left-right with p = 0.5 when `flips` (only where a flip keeps the
      label); Gaussian noise of sd 0.05 * strength, clipped back to [0, 1].
    - tabular (N, F), standardised: Gaussian noise of sd 0.1 * strength.
    - text (N, L) token ids: each non-padding token becomes `<unk>` with p = min(0.5, 0.1 * strength).
    """
    if kind not in KINDS:
        raise ValueError(f"augment: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not strength >= 0:
        raise ValueError(f"augment: must be >= 0 (0 = off), got {strength!r}")
    if strength == 0 or len(x) == 0:
        return x
    if kind == "image":
        return _image(x, strength, generator, flips)
    if kind == "tabular":
        return x + _on(x, torch.randn(x.shape, generator=generator, device=generator.device)) * (0.1 * strength)
    p = min(0.5, 0.1 * strength)
    drop = (_on(x, torch.rand(x.shape, generator=generator, device=generator.device)) < p) & (x != PAD_ID)
    return x.masked_fill(drop, UNK_ID)


def _on(like: Tensor, draw: Tensor) -> Tensor:
    """A draw made on the generator's device, moved to the batch's (and, if float, to its dtype)."""
    return draw.to(like.device, like.dtype if draw.is_floating_point() and like.is_floating_point() else draw.dtype)


def _image(x: Tensor, strength: float, generator: torch.Generator, flips: bool) -> Tensor:
    if x.dim() != 4:
        raise ValueError(f"augment: images must be (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    most = min(max(1, round(strength * w / 8)), h - 1, w - 1)
    out = x
    if most > 0:
        # out[i, j] = x[i - dy, j - dx], read from a zero-padded copy with one gather for the whole batch
        dy, dx = _on(x, torch.randint(-most, most + 1, (2, n), generator=generator, device=generator.device))
        padded = F.pad(x, (most, most, most, most))
        rows = torch.arange(h, device=x.device) + (most - dy)[:, None]  # (N, H)
        cols = torch.arange(w, device=x.device) + (most - dx)[:, None]  # (N, W)
        samples = torch.arange(n, device=x.device)[:, None, None, None]
        channels = torch.arange(c, device=x.device)[None, :, None, None]
        out = padded[samples, channels, rows[:, None, :, None], cols[:, None, None, :]]
    if flips:
        flip = _on(x, torch.rand(n, generator=generator, device=generator.device)) < 0.5
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    noise = _on(x, torch.randn(x.shape, generator=generator, device=generator.device)) * (0.05 * strength)
    return (out + noise).clamp_(0.0, 1.0)
