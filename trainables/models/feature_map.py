"""The mlp's fixed front for tabular data: `select_features` columns kept, then `pca` components projected.

Why a module and not a data step: the map is fitted on the training rows (a fold's own with `data.folds`),
so it belongs to the model those rows trained, like the fold's `Rescale`. Kept as buffers, the fit travels
in the state dict: a checkpoint, `best/model.pt`, its int8 copy and a cross-validated `Recoded` fold model
all carry it, `build_model` makes the buffers in the right shapes from the knobs alone, and the data
pipeline stays full width (the test split is scored as loaded). It holds no parameters, so the optimizer,
the l1/l2 penalty and `prune` (of parameters) never touch it. Both knobs null: an identity with an empty
state dict, so an mlp without them is the network it always was (same weights from the same seed).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor, nn

from trainables.configs import MLPConfig
from trainables.validation import require


class FeatureMap(nn.Module):
    """x -> x[:, columns] -> (x - mean) @ components.T; `columns` with `select_features`, `mean` and
    `components` with `pca` (None otherwise, and then absent from the state dict)."""

    columns: Tensor | None
    mean: Tensor | None
    components: Tensor | None

    def __init__(self, config: MLPConfig, width: int) -> None:
        super().__init__()
        k, pca = config.select_features, config.pca
        require(k is None or k <= width, "select_features", k, f"must be <= the {width} features of the data")
        left = k or width
        where = "left after select_features" if k else "of the data"
        require(pca is None or pca <= left, "pca", pca, f"must be <= the {left} features {where}")
        self.register_buffer("columns", torch.arange(k) if k else None)
        self.register_buffer("mean", torch.zeros(left) if pca else None)
        self.register_buffer("components", torch.eye(pca, left) if pca else None)
        self.out_features = config.n_features(width)

    @property
    def active(self) -> bool:
        return self.columns is not None or self.components is not None

    def forward(self, x: Tensor) -> Tensor:
        if not self.active:
            return x
        x = x.flatten(1)
        if self.columns is not None:
            x = x.index_select(1, self.columns)
        if self.components is not None:
            x = (x - self.mean) @ self.components.T
        return x

    @torch.no_grad()
    def fit(self, x: Tensor, y: Tensor, seed: int) -> FeatureMap:
        """Fit on training rows `(x, y)` only: the `select_features` columns of highest mutual information
        with `y` (scikit-learn's `SelectKBest` over `mutual_info_classif`, `random_state=seed`), then `pca`
        on those columns (`PCA(random_state=seed)`)."""
        from sklearn.decomposition import PCA  # only trials with these knobs pay for the import
        from sklearn.feature_selection import SelectKBest, mutual_info_classif

        rows = x.flatten(1).cpu().numpy().astype(np.float64)
        labels = y.cpu().numpy()
        if self.columns is not None:
            score = functools.partial(mutual_info_classif, random_state=seed)
            kept = SelectKBest(score, k=len(self.columns)).fit(rows, labels).get_support(indices=True)
            self.columns.copy_(torch.from_numpy(kept))
            rows = rows[:, kept]
        if self.components is not None:
            pca = len(self.components)
            require(pca <= len(rows), "pca", pca, f"must be <= the {len(rows)} training rows")
            fitted = PCA(n_components=pca, random_state=seed).fit(rows)
            self.mean.copy_(torch.from_numpy(fitted.mean_))
            self.components.copy_(torch.from_numpy(fitted.components_))
        return self
