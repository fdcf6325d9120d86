"""Which lobes a fine-tuned NeurIPT classifier uses: occlusion of its IILP lobe features.

The share of the head's weight norm per lobe says little: a freshly initialised head already
spreads it evenly, and a large weight on a feature that never varies is never used. Occlusion
measures use instead. For every lobe ``g``, the lobe's pooled features (all levels, all pooled
statistics) are replaced by their mean over the **training** windows, the head is run again,
and the change of each held-out window's true-class log-probability is recorded:

    drop_i(g) = log p(y_i | x_i) − log p(y_i | x_i with lobe g at its training mean)   [nats]

A lobe the model relies on loses probability on the true class when hidden (drop > 0); a lobe
it ignores gives drops scattered around 0.

Choices
-------
- **Class-balanced mean.** The per-lobe figure is the mean over classes of the within-class
  mean drop (as balanced accuracy weighs classes). A plain mean would reward a lobe whose
  occlusion merely shifts every window towards the majority class. A normal 95% interval over
  windows is reported beside it, as a description only: windows of one recording are not
  independent and the five lobes' drops move together, so that interval excludes 0 for models
  at chance too (measured: a micro model trained on random labels had four lobes "above 0").
- **Which lobes are used: a permutation threshold.** The labels of the held-out windows are
  permuted ``n_permutations`` times; each time the largest class-balanced drop over the lobes
  is kept. A lobe counts as *used* when its drop exceeds the 95th percentile of that maximum,
  a family-wise 5% level over the lobes: a model whose outputs do not follow the labels
  crosses it for any lobe in about one run of twenty.
- **Held-out windows.** The test windows by default. Not the validation windows: the epoch
  was selected on them, so a model at chance looks as if it used a lobe there (it was picked
  for matching those labels by luck). The map describes the reported model and decides
  nothing, so reading the test windows leaks nothing into any choice.
- **Shares** for the scalp map are ``max(drop, 0) / Σ max(drop, 0)``; they are undefined (NaN)
  when no lobe has a positive drop, which is what a model at chance shows.
- The occlusion acts on pooled features, after the encoder's channel stage has mixed channels,
  so it measures the head's use of each lobe's pooled tokens. The balanced-accuracy drop is
  reported beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

Z95 = 1.959963984540054
"""Two-sided 95% normal quantile."""


class LobeOcclusion(NamedTuple):
    """Per-lobe occlusion effect on held-out windows (arrays are length G, in lobe order)."""

    lobes: tuple[str, ...]
    """Lobe (pooling group) names."""
    drop: np.ndarray
    """Class-balanced mean drop of the true-class log-probability (nats), shape (G,)."""
    ci95: np.ndarray
    """Its 95% interval, shape (G, 2)."""
    bacc_drop: np.ndarray
    """Balanced accuracy without occlusion minus with it, shape (G,)."""
    share: np.ndarray
    """``max(drop, 0)`` normalised to sum 1 (NaN everywhere when no drop is positive), (G,)."""
    threshold: float
    """95th percentile of the largest drop over lobes under label permutation (nats)."""
    used: np.ndarray
    """``drop > threshold``: the lobes the model reliably uses, shape (G,), bool."""
    n_windows: int
    """Held-out windows scored."""
    split: str
    """Which split they came from."""

    def to_dict(self) -> dict:
        """JSON-ready: ``{"lobes": {lobe: {drop, ci95, bacc_drop, share, used}}, …}``."""
        lobes = {
            name: {"drop": float(self.drop[g]), "ci95": [float(v) for v in self.ci95[g]],
                   "bacc_drop": float(self.bacc_drop[g]), "share": float(self.share[g]),
                   "used": bool(self.used[g])}
            for g, name in enumerate(self.lobes)
        }
        return {"lobes": lobes, "n_windows": self.n_windows, "split": self.split,
                "null_threshold": self.threshold,
                "method": "occlusion of IILP lobe features by their training mean; "
                          "class-balanced true-class log-probability drop"}


def balanced_mean_ci(values: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """Class-balanced mean of ``values`` (N,) and its 95% normal interval (mean, low, high)."""
    classes = np.unique(labels)
    means, variances = [], []
    for k in classes:
        v = values[labels == k]
        means.append(v.mean())
        variances.append(v.var(ddof=1) / v.size if v.size > 1 else 0.0)
    mean = float(np.mean(means))
    half = Z95 * float(np.sqrt(np.sum(variances))) / len(classes)
    return mean, mean - half, mean + half


def _balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean([np.mean(predicted[labels == k] == k) for k in np.unique(labels)]))


@torch.no_grad()
def occlude_lobes(
    head: nn.Module, features: np.ndarray, labels: np.ndarray, reference: np.ndarray,
    lobes: Sequence[str], n_levels: int, split: str = "test", n_permutations: int = 1000,
    seed: int = 0,
) -> LobeOcclusion:
    """Occlusion of each lobe's pooled features (see the module docs).

    Parameters
    ----------
    head : nn.Module
        Maps pooled features (B, F) to logits (B, K) (``NeurIPTClassifier.forward_head``), in
        eval mode.
    features : ndarray, shape (N, F)
        Pooled features of the held-out windows, level-major, then lobe, then statistic and
        width (the layout of ``PoolingHead.pool``).
    labels : ndarray, shape (N,), int
    reference : ndarray, shape (F,)
        Mean pooled features of the training windows.
    lobes : sequence of str, length G
    n_levels : int
        Encoder levels pooled.
    split : str
        Name of the held-out split (recorded only).
    n_permutations : int
        Label permutations of the null threshold (0: no threshold, nothing is called used).
    seed : int
        Seed of the permutations.

    Returns
    -------
    LobeOcclusion
    """
    n, f = features.shape
    g = len(lobes)
    if f % (n_levels * g):
        raise ValueError(f"features of width {f} do not split into {n_levels} levels x {g} lobes")
    x = torch.as_tensor(features, dtype=torch.float32)
    ref = torch.as_tensor(reference, dtype=torch.float32).view(n_levels, g, -1)

    def log_proba(feats: torch.Tensor) -> np.ndarray:
        return head(feats).float().log_softmax(dim=-1).numpy().astype(np.float64)  # (N, K)

    rows = np.arange(n)
    base = log_proba(x)
    base_bacc = _balanced_accuracy(labels, base.argmax(1))
    occluded = []
    drop, ci, bacc = np.zeros(g), np.zeros((g, 2)), np.zeros(g)
    for lobe in range(g):
        hidden = x.view(n, n_levels, g, -1).clone()
        hidden[:, :, lobe, :] = ref[:, lobe, :]
        occluded.append(log_proba(hidden.view(n, f)))
        per_window = base[rows, labels] - occluded[-1][rows, labels]
        drop[lobe], ci[lobe, 0], ci[lobe, 1] = balanced_mean_ci(per_window, labels)
        bacc[lobe] = base_bacc - _balanced_accuracy(labels, occluded[-1].argmax(1))
    rng = np.random.default_rng(seed)
    null_max = np.empty(n_permutations)
    for r in range(n_permutations):
        fake = rng.permutation(labels)
        null_max[r] = max(balanced_mean_ci(base[rows, fake] - occ[rows, fake], fake)[0]
                          for occ in occluded)
    threshold = float(np.quantile(null_max, 0.95)) if n_permutations else math.inf
    positive = np.clip(drop, 0.0, None)
    share = positive / positive.sum() if positive.sum() > 0 else np.full(g, np.nan)
    return LobeOcclusion(tuple(lobes), drop, ci, bacc, share, threshold, drop > threshold,
                         int(n), split)


def lobe_occlusion(model: nn.Module, task, lobes: Sequence[str], *, scheme: str,
                   batch_size: int, device: torch.device, split: str = "val") -> LobeOcclusion:
    """Occlusion map of a NeurIPT classifier on ``task``'s ``split`` windows.

    The reference is the mean pooled feature vector of the task's training windows.
    """
    from neuript.data.loader import make_task_loader
    from neuript.train.evaluate import predict_batches

    def pooled(name: str):
        loader = make_task_loader(task, name, batch_size=batch_size, shuffle=False, seed=0,
                                  scheme=scheme)
        return predict_batches(model, loader, device, keep_features=True)

    train, held = pooled("train"), pooled(split)
    model.eval()
    n_levels = model.head.n_levels
    return occlude_lobes(lambda f: model.forward_head(f.to(device)).cpu(), held.features,
                         held.labels, train.features.mean(axis=0), lobes, n_levels, split)
