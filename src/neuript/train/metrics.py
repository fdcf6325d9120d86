"""Classification metrics of the field, their aggregation over seeds, and a results table.

Binary tasks report balanced accuracy, AUROC and AUC-PR (with Cohen's κ and weighted F1);
multi-class tasks report balanced accuracy, Cohen's κ and weighted F1 (plus macro one-vs-rest
AUROC when every class is present). Hard predictions are the argmax of the probabilities.
Every score comes from :mod:`sklearn.metrics`; a score that is undefined on the data (AUROC with
one class in ``y_true``) is NaN, never an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from neuript.errors import NeuriptError

BINARY_METRICS = ("balanced_accuracy", "auroc", "auc_pr", "cohen_kappa", "weighted_f1")
"""Keys returned by :func:`classification_metrics` for two classes."""
MULTICLASS_METRICS = ("balanced_accuracy", "cohen_kappa", "weighted_f1", "auroc")
"""Keys returned by :func:`classification_metrics` for more than two classes."""


def _check_inputs(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> None:
    if n_classes < 2:
        raise NeuriptError(f"n_classes must be >= 2; got {n_classes!r}")
    if y_true.ndim != 1 or proba.shape != (y_true.shape[0], n_classes):
        raise NeuriptError(
            f"y_true must have shape (N,) and proba (N, {n_classes}); got {y_true.shape} and "
            f"{proba.shape}"
        )
    if y_true.size == 0:
        raise NeuriptError("y_true is empty; metrics need at least one prediction")
    if y_true.min() < 0 or y_true.max() >= n_classes:
        raise NeuriptError(
            f"y_true must hold class indices in [0, {n_classes}); got range "
            f"[{y_true.min()}, {y_true.max()}]"
        )


def _auroc(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """AUROC (binary: of class 1; multi-class: macro one-vs-rest); NaN if a class is absent."""
    if np.unique(y_true).size < n_classes:
        return math.nan
    if n_classes == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1]))
    normalised = proba / proba.sum(axis=1, keepdims=True)
    return float(skm.roc_auc_score(y_true, normalised, multi_class="ovr", average="macro",
                                   labels=np.arange(n_classes)))


def classification_metrics(
    y_true: np.ndarray, proba: np.ndarray, n_classes: int
) -> dict[str, float]:
    """Score probabilistic predictions with the paper's metrics.

    Parameters
    ----------
    y_true : ndarray, shape (N,), int
        True class indices in ``[0, n_classes)``.
    proba : ndarray, shape (N, n_classes), float
        Predicted class probabilities (rows need not sum exactly to 1).
    n_classes : int
        Number of classes K.

    Returns
    -------
    scores : dict of str to float
        K = 2: ``balanced_accuracy``, ``auroc``, ``auc_pr`` (average precision of class 1),
        ``cohen_kappa``, ``weighted_f1``. K > 2: ``balanced_accuracy``, ``cohen_kappa``,
        ``weighted_f1``, ``auroc`` (macro one-vs-rest). Fractions in [0, 1] (κ in [−1, 1]);
        NaN where undefined (AUROC and AUC-PR need every class in ``y_true``).
    """
    y_true = np.asarray(y_true).astype(np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    _check_inputs(y_true, proba, n_classes)
    y_pred = proba.argmax(axis=1)
    labels = np.arange(n_classes)
    with warnings.catch_warnings():
        # sklearn warns (and returns NaN or 0) on degenerate inputs such as a single class
        warnings.simplefilter("ignore")
        scores = {
            "balanced_accuracy": float(skm.balanced_accuracy_score(y_true, y_pred)),
            "cohen_kappa": float(skm.cohen_kappa_score(y_true, y_pred, labels=labels)),
            "weighted_f1": float(skm.f1_score(y_true, y_pred, labels=labels, average="weighted",
                                              zero_division=0)),
            "auroc": _auroc(y_true, proba, n_classes),
        }
        if n_classes == 2:
            has_both = np.unique(y_true).size == 2
            scores["auc_pr"] = (
                float(skm.average_precision_score(y_true, proba[:, 1])) if has_both else math.nan
            )
    keys = BINARY_METRICS if n_classes == 2 else MULTICLASS_METRICS
    return {key: scores[key] for key in keys}


def aggregate(per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, sample standard deviation and t-based 95% interval of each metric over seeds.

    Parameters
    ----------
    per_seed : sequence of dict
        One ``classification_metrics`` dict per seed (same keys in each).

    Returns
    -------
    summary : dict of str to dict
        For every key: ``mean``, ``std`` (ddof = 1; 0 for one seed), ``ci95_low``,
        ``ci95_high`` (mean ± t_{0.975, n−1} · std / √n; equal to the mean for one seed) and
        ``n`` (number of finite values used; NaN seeds are left out, all-NaN gives NaN).
    """
    if not per_seed:
        raise NeuriptError("aggregate needs at least one per-seed result; got none")
    keys = list(per_seed[0])
    for i, result in enumerate(per_seed):
        if set(result) != set(keys):
            raise NeuriptError(
                f"per_seed[{i}] has keys {sorted(result)}; expected the keys of per_seed[0], "
                f"{sorted(keys)}"
            )
    return {key: _summarise(np.array([r[key] for r in per_seed], dtype=np.float64))
            for key in keys}


def _summarise(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    n = finite.size
    if n == 0:
        return {"mean": math.nan, "std": math.nan, "ci95_low": math.nan, "ci95_high": math.nan,
                "n": 0}
    mean = float(finite.mean())
    std = float(finite.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half, "n": n}


def format_results_table(
    rows: Mapping[str, Mapping[str, Mapping[str, float]]],
    metrics: Sequence[str] | None = None,
    *,
    scale: float = 100.0,
    digits: int = 2,
) -> str:
    """Render aggregated results as a markdown table, one row per model, "mean ± std" cells.

    Parameters
    ----------
    rows : dict of str to dict
        Model name → the output of :func:`aggregate`.
    metrics : sequence of str | None
        Columns, in order; None takes the keys of the first row.
    scale : float
        Multiplier for display (100 shows fractions as percentages).
    digits : int
        Decimals shown.

    Returns
    -------
    table : str
        A markdown table; a metric missing from a row, or NaN, shows as "–".
    """
    if not rows:
        raise NeuriptError("format_results_table needs at least one row; got none")
    metrics = list(metrics) if metrics is not None else list(next(iter(rows.values())))
    lines = ["| model | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    for name, summary in rows.items():
        cells = [_cell(summary.get(metric), scale, digits) for metric in metrics]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _cell(stat: Mapping[str, float] | None, scale: float, digits: int) -> str:
    if stat is None or not math.isfinite(stat["mean"]):
        return "–"
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"
