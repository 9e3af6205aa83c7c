"""Several trained models as one predictor: an ensemble's members, or a cross-validation's fold models.

`Ensemble` averages its members' class probabilities with per-member weights (1 each for bagging and for
cross-validation folds; SAMME's alphas for boosting). Its output is the log of that mean, so it is used
like any model's logits: `argmax` predicts and `cross_entropy` gives the mixture's negative log-likelihood.

A cross-validated trial's fold models were each trained on their fold's encoding of the data (tabular
scaling and text vocabulary are fitted per fold), so each sits behind a `Recoded` input map from the
encoding of the trial's plain split (what `best/` is scored with) to its own.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.validation import require


def combine(member_logits: Sequence[Tensor], weights: Tensor) -> Tensor:
    """log(sum_m w_m softmax(logits_m) / sum_m w_m): the weighted mean of the members' probabilities.

    Weights must be >= 0; when they are all 0 (every boosted member no better than chance) the members
    count equally. Probabilities are floored at the smallest normal float before the log, so a confidently
    wrong mixture gives a large, finite loss.
    """
    probabilities = torch.stack([F.softmax(logits, dim=1) for logits in member_logits])  # (M, N, K)
    total = weights.sum()
    share = torch.where(total > 0, weights / total.clamp_min(torch.finfo(weights.dtype).tiny),
                        torch.full_like(weights, 1.0 / len(weights)))
    mixture = torch.einsum("m,mnk->nk", share.to(probabilities.dtype), probabilities)
    return mixture.clamp_min(torch.finfo(mixture.dtype).tiny).log()


class Ensemble(nn.Module):
    """Members' probabilities averaged with the `weights` buffer (a checkpoint restores boosting's alphas)."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        require(len(members) >= 1, "members", len(members), "must be >= 1")
        self.members = nn.ModuleList(members)
        self.register_buffer("weights", torch.ones(len(members)))

    def forward(self, x: Tensor, *args: Tensor) -> Tensor:
        """Log of the weighted mean probability (N, n_classes); `args` (an rnn's lengths) go to every member."""
        return combine([member(x, *args) for member in self.members], self.weights)


class Rescale(nn.Module):
    """x * scale + shift, per feature: standardised one way -> standardised another (identity for images)."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(input_shape))
        self.register_buffer("shift", torch.zeros(input_shape))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift

    @torch.no_grad()
    def fit(self, source: tuple[Tensor, Tensor] | None, target: tuple[Tensor, Tensor] | None) -> Rescale:
        """Map features standardised with `source` (mean, std) to ones standardised with `target`;
        None is unscaled (images): x_t = (x_s * std_s + mean_s - mean_t) / std_t."""
        mean_s, std_s = source if source is not None else (torch.zeros_like(self.shift), torch.ones_like(self.scale))
        mean_t, std_t = target if target is not None else (torch.zeros_like(self.shift), torch.ones_like(self.scale))
        self.scale.copy_(std_s / std_t)
        self.shift.copy_((mean_s - mean_t) / std_t)
        return self


class Reindex(nn.Module):
    """Token ids of one vocabulary -> ids of another (a word the target lacks becomes `<unk>`, id 1)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.register_buffer("ids", torch.arange(vocab_size))

    def forward(self, x: Tensor) -> Tensor:
        return self.ids[x]

    @torch.no_grad()
    def fit(self, source: Sequence[str], target: Sequence[str]) -> Reindex:
        """Padding stays 0; the first two entries of both vocabularies are `<pad>`, `<unk>`."""
        index = {token: i for i, token in enumerate(target)}
        ids = [0] + [index.get(token, 1) for token in source[1:]]
        self.ids.fill_(1)
        self.ids[:len(ids)] = torch.tensor(ids)
        return self


class Recoded(nn.Module):
    """A fold's model behind the map from the trial's input encoding to the fold's own."""

    def __init__(self, recode: nn.Module, model: nn.Module) -> None:
        super().__init__()
        self.recode = recode
        self.model = model

    def forward(self, x: Tensor, *args: Tensor) -> Tensor:
        return self.model(self.recode(x), *args)
