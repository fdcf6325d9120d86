"""Evaluate a fine-tuned classifier on a task split: batched predictions, metrics, CSV.

Model folders are read and written by :mod:`neuript.model_folder` (one typed contract for
every command); this module only runs a loaded model over a task.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from neuript.config import InputContract
from neuript.data.tasks.base import TaskWindows
from neuript.errors import ContractError, NeuriptError
from neuript.model_folder import LoadedClassifier, load_classifier

log = logging.getLogger(__name__)


class Predictions(NamedTuple):
    """Model outputs over a loader.

    Attributes
    ----------
    proba : ndarray, shape (N, K), float64
        Softmax class probabilities.
    labels : ndarray, shape (N,), int64 | None
        True classes (None when the batches carry none).
    window_ids : ndarray, shape (N,), int64
        Row of each window in its task.
    loss : float
        Mean of ``loss_fn`` over windows (NaN without labels or ``loss_fn``).
    features : ndarray, shape (N, F), float32 | None
        Pooled features (only when requested).
    """

    proba: np.ndarray
    labels: np.ndarray | None
    window_ids: np.ndarray
    loss: float
    features: np.ndarray | None


class EvalResult(NamedTuple):
    """What :func:`run_evaluate` returns: metrics, window count and the predictions file."""

    metrics: dict[str, float]
    n_windows: int
    predictions_path: Path | None
    pretraining_overlap: dict[str, Any] | None = None
    """The subject-overlap check of the model's pretraining corpus against the evaluated split
    (:func:`neuript.train.provenance.check_overlap`); None for models without a pretrained
    init."""


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``"auto"`` to CUDA when available, else CPU; other names pass through."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def check_task_contract(loaded: LoadedClassifier, task: TaskWindows, model_dir: Any) -> None:
    """Refuse a task whose preprocessing or channels differ from the model's contract."""
    data = InputContract.from_preprocess(task.preprocess, task.ch_names)
    problems = loaded.contract.mismatches(data, check_window=True)
    if loaded.contract.channels and tuple(loaded.contract.channels) != tuple(task.ch_names):
        problems.append(
            f"channels: model expects {list(loaded.contract.channels)}, "
            f"data has {list(task.ch_names)}"
        )
    if problems:
        raise ContractError(
            f"{model_dir}: task {task.name!r} breaks the model's input contract: "
            + "; ".join(problems)
        )


# --------------------------------------------------------------------------------------------
# inference over a loader
# --------------------------------------------------------------------------------------------
def collapse_warning(proba: np.ndarray, labels: np.ndarray | None, auroc: float,
                     class_names: Sequence[str], split: str = "test") -> str | None:
    """A warning when every window of ``split`` gets one class though it holds several, or
    None. With an AUROC well above chance the model ranks the windows but its threshold does
    not carry to those subjects (the shift between people, docs/recipe.md fifth pass).

    ``proba`` (N, K), ``labels`` (N,) true classes, ``auroc`` that split's AUROC (fraction).
    """
    if labels is None or len(np.unique(labels)) < 2 or len(proba) == 0:
        return None
    called = np.unique(proba.argmax(axis=1))
    if called.size > 1:
        return None
    ranks = (f"although it ranks them (AUROC {auroc:.3f}): its decision threshold does not "
             f"carry to the {split} subjects" if math.isfinite(auroc) and auroc >= 0.6 else
             "and does not rank them either")
    return (f"every {split} window was called {class_names[int(called[0])]!r} {ranks}; "
            "fine-tuning with subject-wise normalisation (--subject_norm spectral, "
            "transductive) or on more training subjects are the usual remedies")


@torch.no_grad()
def predict_batches(
    model: nn.Module,
    batches: Iterable[Any],
    device: torch.device,
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
    keep_features: bool = False,
) -> Predictions:
    """Run ``model`` over every batch in eval mode and gather probabilities (and features).

    Parameters
    ----------
    model : nn.Module
        A classifier returning ``ClassifierOutput``.
    batches : iterable of neuript.batch.Batch
        The windows (signals already compressed).
    device : torch.device
    loss_fn : callable | None
        ``loss_fn(logits (B, K), labels (B,)) -> scalar``, averaged over windows.
    keep_features : bool
        Also return the pooled features.

    Returns
    -------
    predictions : Predictions
    """
    was_training = model.training
    model.eval()
    probas, labels, ids, feats = [], [], [], []
    loss_sum, n_seen = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        out = model(batch.signals, batch.positions, batch.channel_mask, batch.group_mask)
        logits = out.logits.float()
        probas.append(logits.softmax(dim=-1).cpu().double().numpy())
        ids.append(batch.window_ids.cpu().numpy())
        if keep_features:
            feats.append(out.features.float().cpu().numpy())
        if batch.labels is not None:
            labels.append(batch.labels.cpu().numpy())
            if loss_fn is not None:
                loss_sum += float(loss_fn(logits, batch.labels)) * len(batch)
                n_seen += len(batch)
    model.train(was_training)
    n_classes = getattr(model, "n_classes", 0)
    return Predictions(
        proba=np.concatenate(probas) if probas else np.zeros((0, n_classes)),
        labels=np.concatenate(labels).astype(np.int64) if labels else None,
        window_ids=np.concatenate(ids).astype(np.int64) if ids else np.zeros(0, np.int64),
        loss=loss_sum / n_seen if n_seen else float("nan"),
        features=np.concatenate(feats) if feats else None,
    )


def write_predictions_csv(
    path: str | Path, task: TaskWindows, preds: Predictions, class_names: tuple[str, ...]
) -> Path:
    """Write one row per window: id, source, start, subject, label, prediction, probabilities."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["window_id", "source", "start", "subject", "label", "predicted",
                         *[f"p_{name}" for name in class_names]])
        predicted = preds.proba.argmax(axis=1)
        labels = preds.labels if preds.labels is not None else np.full(len(predicted), -1)
        for row, (wid, y, yhat) in enumerate(zip(preds.window_ids, labels, predicted)):
            writer.writerow([int(wid), task.sources[wid], int(task.starts[wid]),
                             task.subjects[wid], int(y), int(yhat),
                             *[f"{p:.6f}" for p in preds.proba[row]]])
    tmp.replace(path)
    return path


def run_evaluate(
    model_dir: str | Path,
    task: str | TaskWindows,
    *,
    split: str = "test",
    data_dir: str | Path | None = None,
    data_root: str | Path | None = None,
    task_options: dict[str, Any] | None = None,
    out: str | Path | None = None,
    batch_size: int = 128,
    device: str = "auto",
    allow_overlap: bool = False,
) -> EvalResult:
    """Evaluate a fine-tuned model on one split of a task.

    Parameters
    ----------
    model_dir : path-like
        A fine-tuned model directory (``RUN/seed_<s>/model``).
    task : str | TaskWindows
        A registry name (built with ``data_dir``/``data_root``/``task_options``) or windows.
    split : {"train", "val", "test"}
    out : path-like | None
        Where to write the per-window predictions CSV (None: not written).
    batch_size : int
    device : str
    allow_overlap : bool
        Evaluate even when the model's pretraining corpus holds recordings or subjects of this
        split (refused otherwise); the overlap is returned in ``pretraining_overlap``.

    Returns
    -------
    result : EvalResult
        ``metrics`` from :func:`neuript.train.metrics.classification_metrics`.
    """
    from neuript.data.loader import make_task_loader
    from neuript.data.normalize import normalize_task
    from neuript.data.tasks import build_task
    from neuript.train.metrics import classification_metrics

    loaded = load_classifier(model_dir)
    if isinstance(task, str):
        task = build_task(task, data_dir=data_dir, data_root=data_root, **(task_options or {}))
    check_task_contract(loaded, task, model_dir)
    task = normalize_task(task, loaded.contract.subject_norm, loaded.contract.subject_norm_uv)
    if len(task.indices(split)) == 0:
        raise NeuriptError(f"task {task.name!r}: split {split!r} holds no windows")
    overlap = None
    if loaded.info.init != "scratch":
        from neuript.train.provenance import check_overlap

        overlap = check_overlap(loaded.info.pretraining_provenance, task,
                                loaded.info.init, allow=allow_overlap, split=split)
    scheme = loaded.info.scheme
    loader = make_task_loader(task, split, batch_size=batch_size, shuffle=False, seed=0,
                              scheme=scheme, group_names=loaded.info.group_names
                              if loaded.contract.any_montage else None)
    dev = resolve_device(device)
    preds = predict_batches(loaded.model.to(dev), loader, dev)
    assert preds.labels is not None
    metrics = classification_metrics(preds.labels, preds.proba, task.n_classes)
    path = None
    if out is not None:
        class_names = loaded.info.class_names
        path = write_predictions_csv(out, task, preds, class_names)
    log.info("evaluate %s on %s/%s: %s", model_dir, task.name, split, metrics)
    names = loaded.info.class_names or [str(k) for k in range(task.n_classes)]
    collapsed = collapse_warning(preds.proba, preds.labels,
                                 float(metrics.get("auroc", math.nan)), names, split)
    if collapsed:
        log.warning("%s on %s/%s: %s", model_dir, task.name, split, collapsed)
    return EvalResult({k: float(v) for k, v in metrics.items()}, len(preds.proba), path, overlap)
