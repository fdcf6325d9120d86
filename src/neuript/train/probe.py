"""Linear-SVM probe of frozen encoder features: how much a pretrained encoder knows of a task.

The paper compares masking strategies by an SVM fitted on frozen features (NEURIPT_SPEC §7:
"SVM probe on TUEV features"); this module is that protocol for any task and any checkpoint:

1. encode every window of the task with the frozen encoder and pool it with the classifier's
   pooling (IILP over every level by default): one feature vector per window;
2. standardise each feature with the training split's mean and standard deviation;
3. fit a class-balanced linear SVM for each ``C`` of a grid on the training split, keep the ``C``
   with the best validation balanced accuracy, and score the test split with the task's metrics
   (decision values turned into probabilities by a softmax, so that AUROC ranks them).

No gradient step touches the encoder, so two checkpoints are compared on what they learned, not
on how a fine-tuning run happened to go. Deterministic: no seed.
"""

from __future__ import annotations

import logging
import os
from typing import NamedTuple

import numpy as np
import torch

from neuript.data.tasks.base import TaskWindows
from neuript.errors import NeuriptError

log = logging.getLogger(__name__)

DEFAULT_C: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""Inverse regularisation strengths tried (selection on validation balanced accuracy)."""


class ProbeResult(NamedTuple):
    """What :func:`svm_probe` and :func:`run_probe` return.

    Attributes
    ----------
    test : dict of str to float
        The task's metrics on the test split (``classification_metrics``).
    val_balanced_accuracy : float
        Validation balanced accuracy of the chosen ``C``.
    c : float
        The chosen inverse regularisation strength.
    n_features : int
        Length of the feature vector.
    val_by_c : dict of float to float
        Validation balanced accuracy of every ``C`` tried.
    """

    test: dict[str, float]
    val_balanced_accuracy: float
    c: float
    n_features: int
    val_by_c: dict[float, float]


def task_features(model: torch.nn.Module, task: TaskWindows, *, scheme: str = "functional",
                  batch_size: int = 128, device: str = "cpu",
                  splits: tuple[str, ...] | None = None) -> np.ndarray:
    """Pooled features of every window of ``task``, in the task's row order.

    Parameters
    ----------
    model : NeurIPTClassifier
        Its ``features`` output is read (the head's logits are ignored).
    task : TaskWindows
        Windows are compressed as ``task.preprocess`` says, as in training.
    scheme : str
        Pooling groups (``"functional"`` = IILP).
    splits : tuple of str | None
        Encode only these splits (other rows stay zero); None: every split.

    Returns
    -------
    features : ndarray, shape (N, F), float32
    """
    from neuript.data.loader import make_task_loader
    from neuript.train.evaluate import predict_batches

    out = np.zeros((len(task.labels), 0), np.float32)
    for split in np.unique(task.splits) if splits is None else splits:
        loader = make_task_loader(task, str(split), batch_size=batch_size, shuffle=False, seed=0,
                                  scheme=scheme)
        preds = predict_batches(model, loader, torch.device(device), keep_features=True)
        assert preds.features is not None
        if out.shape[1] == 0:
            out = np.zeros((len(task.labels), preds.features.shape[1]), np.float32)
        out[preds.window_ids] = preds.features
    return out


def fit_on_validation(make, cs: tuple[float, ...], x: dict[str, np.ndarray],
                      y: dict[str, np.ndarray]):
    """Fit ``make(c)`` on ``x["train"]`` for every ``c``; keep the best on validation.

    Returns
    -------
    best_c : float
        Highest validation balanced accuracy (ties: the smaller, more regularised ``c``).
    model : estimator
        The classifier fitted with ``best_c``.
    val_by_c : dict of float to float
        Validation balanced accuracy of every ``c``.
    """
    from sklearn.metrics import balanced_accuracy_score

    fitted, val_by_c = {}, {}
    for c in cs:
        fitted[c] = make(c).fit(x["train"], y["train"])
        val_by_c[c] = float(balanced_accuracy_score(y["val"], fitted[c].predict(x["val"])))
    best = max(cs, key=lambda c: (val_by_c[c], -c))
    return best, fitted[best], val_by_c


def svm_probe(features: np.ndarray, labels: np.ndarray, splits: np.ndarray, n_classes: int,
              cs: tuple[float, ...] = DEFAULT_C) -> ProbeResult:
    """Fit the standardised linear SVM probe (module notes, steps 2–3).

    Parameters
    ----------
    features : ndarray, shape (N, F)
    labels : ndarray, shape (N,), int
    splits : ndarray, shape (N,), str
        ``"train"``, ``"val"`` and ``"test"`` must all be present.
    n_classes : int
    cs : tuple of float

    Returns
    -------
    result : ProbeResult
    """
    from scipy.special import softmax
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    from neuript.train.metrics import classification_metrics

    parts = {s: np.flatnonzero(splits == s) for s in ("train", "val", "test")}
    empty = [s for s, rows in parts.items() if len(rows) == 0]
    if empty:
        raise NeuriptError(f"svm_probe: the task has no {', '.join(empty)} windows")
    if not np.isfinite(features).all():
        raise NeuriptError("svm_probe: the features hold NaN or infinite values")
    scaler = StandardScaler().fit(features[parts["train"]])
    x = {s: scaler.transform(features[rows]) for s, rows in parts.items()}
    y = {s: labels[rows] for s, rows in parts.items()}
    best, fitted, val_by_c = fit_on_validation(
        lambda c: LinearSVC(C=c, class_weight="balanced", max_iter=20000), cs, x, y)
    scores = fitted.decision_function(x["test"])
    scores = np.stack([-scores, scores], axis=1) / 2 if scores.ndim == 1 else scores
    proba = softmax(scores, axis=1)
    test = classification_metrics(y["test"], proba, n_classes)
    return ProbeResult(test, val_by_c[best], float(best), int(features.shape[1]), val_by_c)


def run_probe(init: str | os.PathLike, task: TaskWindows, *, scheme: str = "functional",
              cs: tuple[float, ...] = DEFAULT_C, preset_name: str = "small",
              batch_size: int = 128, device: str = "cpu",
              allow_overlap: bool = False) -> ProbeResult:
    """SVM probe of a pretraining checkpoint (or ``"scratch"``: a randomly initialised encoder).

    Parameters
    ----------
    init : path-like | "scratch"
        A pretraining run folder (or its ``pretrained/``), as ``finetune --init`` takes.
    task : TaskWindows
    scheme, cs, batch_size, device
        See :func:`task_features` and :func:`svm_probe`.
    preset_name : str
        Preset of the random encoder when ``init="scratch"``.
    allow_overlap : bool
        Probe even when the checkpoint's pretraining corpus holds test subjects of ``task``.

    Returns
    -------
    result : ProbeResult
    """
    from neuript.data.montage import pooling_groups
    from neuript.model_folder import resolve_init_dir
    from neuript.train.finetune import FinetuneRunConfig, check_init_contract
    from neuript.train.finetune_seed import build_model
    from neuript.train.provenance import check_overlap, checkpoint_provenance

    if str(init) != "scratch":
        init_dir = resolve_init_dir(str(init))
        check_init_contract(init_dir, task.preprocess)
        check_overlap(checkpoint_provenance(init_dir), task, str(init), allow=allow_overlap)
    groups = pooling_groups(list(task.ch_names), task.positions, scheme)
    torch.manual_seed(0)  # the random encoder of init="scratch"; no effect on a loaded one
    cfg = FinetuneRunConfig(task=task.name, init=str(init), preset=preset_name, scheme=scheme)
    model = build_model(cfg, task, groups.names)
    features = task_features(model.eval(), task, scheme=scheme, batch_size=batch_size,
                             device=device)
    result = svm_probe(features, task.labels, task.splits, task.n_classes, cs)
    log.info("SVM probe of %s on %s: C=%g, val bacc %.4f, test %s", init, task.name, result.c,
             result.val_balanced_accuracy, result.test)
    return result


LP_INIT_C: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0)
"""Inverse regularisation strengths of the LP-FT head initialisation (chosen on validation)."""


class HeadInit(NamedTuple):
    """What :func:`init_head_by_probe` did.

    Attributes
    ----------
    c : float
        The chosen inverse regularisation strength.
    val_balanced_accuracy : float
        Validation balanced accuracy of the probe at that ``C``.
    """

    c: float
    val_balanced_accuracy: float


@torch.no_grad()
def init_head_by_probe(model: torch.nn.Module, task: TaskWindows, *, scheme: str = "functional",
                       cs: tuple[float, ...] = LP_INIT_C, batch_size: int = 128,
                       device: str | torch.device = "cpu") -> HeadInit:
    """Set a linear classifier head to a logistic regression on the frozen encoder's features.

    The first step of LP-FT (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained
    Features"): with the head already near its optimum, fine-tuning the encoder starts from a
    small gradient instead of a random head's large one. The regression is fitted on the head's
    input as the head sees it (pooled features after ``head.norm``, no further standardisation:
    dividing by per-feature spreads gives near-constant features huge weights, and the first
    fine-tuning steps then wreck the probe), class-balanced, with ``C`` chosen on validation
    balanced accuracy; its coefficients become the classifier's, so the model's logits equal
    the regression's decision values (binary: ``±z/2`` for the two classes).

    Parameters
    ----------
    model : NeurIPTClassifier
        With ``head.kind == "linear"``; modified in place (the classifier's last Linear).
    task : TaskWindows
        Its ``train`` and ``val`` splits are used.
    scheme, batch_size, device
        As :func:`task_features`.
    cs : tuple of float
        Inverse regularisation strengths tried.

    Returns
    -------
    result : HeadInit
    """
    from sklearn.linear_model import LogisticRegression

    if getattr(model.head, "kind", None) != "linear":
        raise NeuriptError("head_init='linear_probe' needs a linear head (head='linear'); got "
                           f"head={getattr(model.head, 'kind', None)!r}")
    was_training = model.training
    model.eval()
    sub = {s: task.indices(s) for s in ("train", "val")}
    feats = task_features(model, task, scheme=scheme, batch_size=batch_size, device=str(device),
                          splits=("train", "val"))
    normed = model.head.norm(torch.as_tensor(feats, device=device)).cpu().numpy()
    x = {s: normed[rows].astype(np.float64) for s, rows in sub.items()}
    y = {s: task.labels[rows] for s, rows in sub.items()}
    best, reg, score = fit_on_validation(
        lambda c: LogisticRegression(C=c, class_weight="balanced", max_iter=2000), cs, x, y)
    coef = np.zeros((task.n_classes, normed.shape[1]))
    intercept = np.zeros(task.n_classes)
    if reg.coef_.shape[0] == 1:  # binary: one decision value z = w·x + b → logits (−z/2, +z/2)
        for cls, sign in ((reg.classes_[1], 0.5), (reg.classes_[0], -0.5)):
            coef[cls], intercept[cls] = sign * reg.coef_[0], sign * reg.intercept_[0]
    else:
        coef[reg.classes_], intercept[reg.classes_] = reg.coef_, reg.intercept_
    linear = model.head.classifier[-1]
    linear.weight.copy_(torch.as_tensor(coef, dtype=linear.weight.dtype))
    linear.bias.copy_(torch.as_tensor(intercept, dtype=linear.bias.dtype))
    model.train(was_training)
    log.info("LP-FT head: logistic regression C=%g, val bacc %.4f", best, score[best])
    return HeadInit(float(best), score[best])
