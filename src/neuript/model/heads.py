"""Classifier heads: Intra-Inter Lobe Pooling (IILP) over every encoder level, and the losses.

Shapes: ``B`` windows, ``C`` channels, ``L`` tokens per channel at a level, ``d`` width, ``G``
pooling groups (lobes), ``K`` classes.

Notes
-----
IILP (NEURIPT_SPEC §5): for each encoder level, average over time (one vector per channel), then
average the channels of each lobe (one vector per lobe), concatenate the lobes, then the levels,
and classify. Plain mean pooling is the same with one group holding every channel.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuript.errors import check_option

HeadKind = Literal["linear", "mlp"]
HeadNorm = Literal["none", "batch", "layer"]
PoolStats = Literal["mean", "mean_logstd"]
LOGSTD_EPS = 1e-3
"""Added to the standard deviation before its log (token units), so flat tokens stay finite."""


class FeatureStandardizer(nn.Module):
    """Per-feature standardisation of pooled features (BatchNorm1d without affine parameters).

    Batch statistics in training, running statistics in eval mode; a training batch of one
    window (which has no variance) is normalised with the running statistics instead of failing.

    Parameters
    ----------
    n_features : int
        F.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_features, eps=1e-6, affine=False)  # features can be tiny

    def forward(self, features: Tensor) -> Tensor:
        """features : Tensor, shape (B, F) → standardised (B, F)."""
        if self.training and features.shape[0] < 2:
            return F.batch_norm(features, self.norm.running_mean, self.norm.running_var,
                                training=False, eps=self.norm.eps)
        return self.norm(features)


def feature_norm(kind: HeadNorm, n_features: int) -> nn.Module:
    """The feature normalisation of ``ModelConfig.head_norm`` (Identity for ``"none"``)."""
    check_option("head_norm", kind, get_args(HeadNorm))
    if kind == "batch":
        return FeatureStandardizer(n_features)
    if kind == "layer":
        return nn.LayerNorm(n_features)
    return nn.Identity()


def time_pool(tokens: Tensor, stats: PoolStats = "mean", two_pass: bool = False) -> Tensor:
    """Summarise each channel's tokens over time.

    Parameters
    ----------
    tokens : Tensor, shape (B, C, L, d)
    stats : {"mean", "mean_logstd"}
        ``"mean"``: the time average (the paper). ``"mean_logstd"``: the time average and the
        log of the standard deviation over time, concatenated. A band-limited EEG channel has a
        near-zero mean, so a near-linear token map averages to almost nothing; the log-std of
        the same tokens is a log-power feature, the quantity band-power classifiers live on.
    two_pass : bool
        Compute the variance as the mean square of the centred tokens (two passes) instead of
        ``Tensor.var``: the same value to float rounding, and about 20× faster over this
        non-innermost axis on CPU (a fast path, see :mod:`neuript.model.fastpaths`).

    Returns
    -------
    per_channel : Tensor, shape (B, C, d · s), s = 1 or 2
    """
    check_option("stats", stats, get_args(PoolStats))
    mean = tokens.mean(dim=2)  # (B, C, d)
    if stats == "mean":
        return mean
    if two_pass:
        values = tokens.float()
        var = (values - values.mean(dim=2, keepdim=True)).square().mean(dim=2)  # (B, C, d)
    else:
        var = tokens.float().var(dim=2, unbiased=False)
    std = var.add(LOGSTD_EPS**2).sqrt()  # (B, C, d)
    return torch.cat([mean, std.log().to(mean.dtype)], dim=-1)


def group_pool(tokens: Tensor, channel_mask: Tensor, group_mask: Tensor,
               stats: PoolStats = "mean", two_pass: bool = False) -> Tensor:
    """Pool over time (:func:`time_pool`), then average the real channels of each group.

    Parameters
    ----------
    tokens : Tensor, shape (B, C, L, d)
        One encoder level.
    channel_mask : Tensor, shape (B, C), bool
        True for real channels; padded channels are ignored whatever they hold.
    group_mask : Tensor, shape (B, G, C), bool
        Channel membership of each group (a channel may belong to several groups).
    stats : {"mean", "mean_logstd"}
        Statistics over time (:func:`time_pool`).
    two_pass : bool
        Two-pass variance in :func:`time_pool`.

    Returns
    -------
    pooled : Tensor, shape (B, G, d · s)
        Zeros for a group without any real channel.
    """
    per_channel = time_pool(tokens, stats, two_pass)  # (B, C, d·s)
    per_channel = per_channel.masked_fill(~channel_mask[..., None], 0.0)  # NaN-safe for padding
    weight = (group_mask & channel_mask[:, None, :]).to(per_channel.dtype)  # (B, G, C)
    summed = torch.einsum("bgc,bcd->bgd", weight, per_channel)
    count = weight.sum(dim=-1, keepdim=True).clamp(min=1.0)  # (B, G, 1)
    return summed / count


class PoolingHead(nn.Module):
    """IILP pooling over every encoder level followed by a linear or MLP classifier.

    Parameters
    ----------
    d : int
        Token width.
    n_levels : int
        Encoder levels pooled (the embedding plus every block: depth + 1).
    n_groups : int
        Pooling groups G (5 functional lobes for IILP, 1 for mean pooling).
    n_classes : int
        Output logits K (2 logits for a binary task).
    kind : {"linear", "mlp"}
        A linear classifier, or Linear → GELU → Dropout → Linear with ``hidden`` units.
    hidden : int
        Hidden width of the MLP.
    dropout : float
        Dropout of the MLP's hidden layer (and of the features before a linear classifier).
    norm : {"none", "batch", "layer"}
        Normalisation of the pooled features before the classifier (:func:`feature_norm`);
        kept by :meth:`reset_classifier`.
    stats : {"mean", "mean_logstd"}
        Statistics over time pooled per channel (:func:`time_pool`).
    """

    def __init__(self, d: int, n_levels: int, n_groups: int, n_classes: int,
                 kind: HeadKind = "linear", hidden: int = 256, dropout: float = 0.0,
                 norm: HeadNorm = "none", stats: PoolStats = "mean") -> None:
        super().__init__()
        check_option("PoolingHead.kind", kind, get_args(HeadKind))
        if n_classes < 1 or n_groups < 1 or n_levels < 1:
            raise ValueError(
                f"PoolingHead needs n_classes, n_groups, n_levels >= 1, got "
                f"{n_classes}, {n_groups}, {n_levels}"
            )
        self.d, self.n_levels, self.n_groups, self.n_classes = d, n_levels, n_groups, n_classes
        check_option("PoolingHead.stats", stats, get_args(PoolStats))
        self.stats, self.n_stats = stats, 1 if stats == "mean" else 2
        self.fast_paths = True
        """Two-pass variance for ``stats="mean_logstd"`` (:func:`time_pool`)."""
        self.kind, self.hidden, self.dropout_p = kind, hidden, dropout
        self.norm = feature_norm(norm, self.n_features)
        self.classifier = self._build_classifier(n_classes)

    @property
    def n_features(self) -> int:
        """Length F = n_levels · G · d · s of the pooled feature vector (s statistics)."""
        return self.n_levels * self.n_groups * self.d * self.n_stats

    def _build_classifier(self, n_classes: int) -> nn.Module:
        if self.kind == "linear":
            return nn.Sequential(nn.Dropout(self.dropout_p), nn.Linear(self.n_features, n_classes))
        return nn.Sequential(
            nn.Linear(self.n_features, self.hidden),
            nn.GELU(),
            nn.Dropout(self.dropout_p),
            nn.Linear(self.hidden, n_classes),
        )

    def reset_classifier(self, n_classes: int) -> None:
        """Replace the classifier by a freshly initialised one with ``n_classes`` outputs."""
        device = next(self.classifier.parameters()).device
        self.n_classes = n_classes
        self.classifier = self._build_classifier(n_classes).to(device)

    def pool(self, levels: list[Tensor], channel_mask: Tensor, group_mask: Tensor) -> Tensor:
        """Pool every level by group and concatenate.

        Parameters
        ----------
        levels : list of Tensor, shape (B, C, L_l, d)
            Encoder levels (``EncoderOutput.levels``), ``n_levels`` of them.
        channel_mask : Tensor, shape (B, C), bool
        group_mask : Tensor, shape (B, G, C), bool

        Returns
        -------
        features : Tensor, shape (B, n_levels · G · d · s)
            Level-major, then group, then statistic, then width.
        """
        assert len(levels) == self.n_levels, (len(levels), self.n_levels)
        assert group_mask.shape[1] == self.n_groups, (group_mask.shape, self.n_groups)
        pooled = [group_pool(level, channel_mask, group_mask, self.stats,
                             self.fast_paths).flatten(1)
                  for level in levels]
        return torch.cat(pooled, dim=1)

    def forward_head(self, features: Tensor) -> Tensor:
        """Classify pooled features: (B, F) → logits (B, K)."""
        return self.classifier(self.norm(features))

    def forward(self, levels: list[Tensor], channel_mask: Tensor, group_mask: Tensor) -> Tensor:
        """Pool and classify: logits (B, K)."""
        return self.forward_head(self.pool(levels, channel_mask, group_mask))


def logit_adjustment(log_priors: Tensor, k: float) -> Tensor:
    """The additive adjustment k·(log π − log(1 − π)) per class.

    Parameters
    ----------
    log_priors : Tensor, shape (K,)
        log π of each class in the training set.
    k : float
        Strength (the paper tunes it in 0–0.3).

    Returns
    -------
    shift : Tensor, shape (K,)
    """
    return k * (log_priors - torch.log1p(-log_priors.exp().clamp(max=1.0 - 1e-7)))


def balanced_bce(
    logits: Tensor,
    labels: Tensor,
    log_priors: Tensor,
    k: float,
    class_weights: Tensor | None = None,
) -> Tensor:
    """Logit-adjusted ("balanced") BCE against one-hot targets (NEURIPT_SPEC §5).

    Parameters
    ----------
    logits : Tensor, shape (B, K)
    labels : Tensor, shape (B,), int64
    log_priors : Tensor, shape (K,)
        log π of each class in the training set.
    k : float
        Adjustment strength; 0 gives plain one-hot BCE.
    class_weights : Tensor, shape (K,) | None
        Weight of each class's windows; the loss is the weighted mean over windows. None weighs
        every window equally.

    Returns
    -------
    loss : Tensor, scalar
        Mean over the B·K binary terms (window-weighted when ``class_weights`` is given).
    """
    adjusted = logits + logit_adjustment(log_priors.to(logits), k)
    target = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    terms = F.binary_cross_entropy_with_logits(adjusted, target, reduction="none")  # (B, K)
    if class_weights is None:
        return terms.mean()
    weights = class_weights.to(logits)[labels]  # (B,)
    return (terms.mean(dim=-1) * weights).sum() / weights.sum()


def cross_entropy(
    logits: Tensor, labels: Tensor, class_weights: Tensor | None = None
) -> Tensor:
    """Softmax cross-entropy: logits (B, K), labels (B,) → scalar (class-weighted mean if given)."""
    if class_weights is None:
        return F.cross_entropy(logits, labels)
    return F.cross_entropy(logits, labels, weight=class_weights.to(logits))


def balanced_class_weights(counts: Tensor) -> Tensor:
    """Inverse-frequency class weights N / (K · n_k), shape (K,); absent classes get 0."""
    counts = counts.to(torch.float64)
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.to(torch.float32)

