"""scikit-learn estimators over EEG epochs: NeurIPT fine-tuning and the band-power baseline.

Both estimators take ``X`` as an ``mne.Epochs`` or an array ``(n_epochs, n_channels, n_times)``
in **volts** (MNE's convention; give ``ch_names`` and ``sfreq`` at construction), ``y`` as any
labels (strings too), and preprocess every epoch the way a task is preprocessed
(:func:`neuript.data.tasks.epochs.task_from_epochs`: channel map, resampling to 64 Hz, 0.1–30 Hz
band-pass, µV), one window per epoch from its first sample. They therefore sit side by side in
``cross_val_score``, ``GridSearchCV`` and ``Pipeline`` (sklearn indexes an ``mne.Epochs`` into a
list of one-epoch Epochs per fold; that list is accepted too).

:class:`NeurIPTClassifier` builds a task from the training epochs and runs the fine-tuning code
(:func:`neuript.train.finetune.run_finetune`: balanced BCE, one-cycle AdamW, model selection on
validation balanced accuracy): no second training loop. :class:`BandPowerClassifier` fits
:class:`neuript.baselines.bandpower.BandPowerClassifier` (log band power + logistic regression)
on the same windows.

**Validation split.** Model selection (NeurIPT's epoch, the baseline's C) uses a hold-out of the
training data only: ``val_fraction`` of the groups when ``fit(X, y, groups=...)`` is given
(``sklearn.model_selection.GroupShuffleSplit``, so a subject's epochs are never on both sides;
with ``cross_val_score`` pass ``params={"groups": groups}`` as well as ``groups=``), else
``val_fraction`` of the epochs stratified by class (``StratifiedShuffleSplit``), seeded by
``seed``. The fine-tuning run's "test" split is a copy of that hold-out: the honest test set is
the cross-validation fold.

**sklearn checks.** ``check_estimator`` skips every check for an estimator tagged as not taking
2-D input (``input_tags.two_d_array = False``, set here with ``three_d_array = True``): its checks
draw 2-D ``(n_samples, n_features)`` data, which is not EEG epochs. ``tests/test_sklearn.py``
therefore runs the API checks that need no fitting on 2-D data by name (cloning, ``get_params``
/ ``set_params`` invariance, repr, nothing set in ``__init__``, default-constructible, unfitted
errors, mixin order, tag types) and 3-D versions of the fitting checks (fit returns self, params
not overwritten, idempotent fit, string labels, NaN/inf and empty input refused, pickling,
``Pipeline``, ``cross_val_score`` with ``GroupKFold``). ``score`` is sklearn's accuracy.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from neuript.baselines.bandpower import DEFAULT_CS
from neuript.config import PreprocessConfig
from neuript.sklearn_epochs import EpochsClassifierBase

log = logging.getLogger(__name__)

__all__ = ["BandPowerClassifier", "NeurIPTClassifier"]
_RESERVED = frozenset({"task", "init", "preset", "model_overrides", "seeds", "out_dir", "report",
                       "manifest", "bids_root", "data_dir", "data_root", "model"})


class NeurIPTClassifier(EpochsClassifierBase):
    """NeurIPT fine-tuned on labelled epochs, as a scikit-learn classifier.

    Parameters
    ----------
    init : str
        ``"scratch"``, a shipped checkpoint (``"neuript-small"``) or a checkpoint folder.
    preset : str
        Model preset when training from scratch (``"small"``, ``"tiny"``, ``"paper"``).
    epochs, lr, batch_size : int, float, int
        Fine-tuning epochs, peak one-cycle learning rate, windows per step.
    ch_names : list of str | None
        Channel names of an array ``X`` (with ``mne.Epochs``: None, or equal to theirs).
    sfreq : float | None
        Sampling rate (Hz) of an array ``X`` (with ``mne.Epochs``: None, or equal to theirs).
    window_s : float | None
        Window length (s) at the model rate; None: the longest whole number of merged tokens
        in the epoch (``n_times`` resampled, rounded down to the model's merge product).
    montage : str | list of str
        ``"auto"`` (TCP when every electrode is there, else the monopolar channels),
        ``"tcp"``, ``"monopolar"`` or explicit channels / ``"A-B"`` pairs.
    preprocess : PreprocessConfig | None
        Band, notch, rate; None: the downstream default (0.1–30 Hz, 64 Hz), the shipped
        checkpoint's contract.
    val_fraction : float
        Share of the training groups (or epochs) held out for model selection.
    seed : int
        Seed of the hold-out split and of training.
    threads : int | None
        torch CPU threads (``torch.set_num_threads``, a process-wide setting); None leaves it.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda[:i]"``, for fitting and prediction.
    model_overrides : dict | None
        Dotted ``ModelConfig`` overrides, e.g. ``{"d_model": 16}``.
    finetune_options : dict | None
        Other :class:`~neuript.train.finetune.FinetuneRunConfig` fields (``loss``,
        ``head_init``, ``allow_overlap`` …); ``optim`` and ``train`` take dicts of fields.
    out_dir : str | None
        Keep the fine-tuning run (config, curves, model) here; None: a temporary folder,
        deleted after ``fit``.

    Attributes
    ----------
    classes_ : ndarray, shape (K,)
        The labels, in the column order of :meth:`predict_proba`.
    model_ : neuript.model.neuript.NeurIPTClassifier
        The selected network (eval mode, CPU).
    ch_names_, positions_ : tuple of str, ndarray (C, 3)
        The model's channels and their positions (metres).
    window_samples_ : int
        Samples per window W at ``preprocess_.sfreq_hz``.
    best_epoch_, val_metrics_ : int, dict
        The selected epoch and its validation metrics.
    model_dir_ : Path | None
        The saved model folder (with ``out_dir``), usable by ``neuript.predict``.
    """

    def __init__(self, init: str = "scratch", preset: str = "small", epochs: int = 6,
                 lr: float = 3e-3, batch_size: int = 32, ch_names: Sequence[str] | None = None,
                 sfreq: float | None = None, window_s: float | None = None,
                 montage: str | Sequence[str] = "auto", preprocess: PreprocessConfig | None = None,
                 val_fraction: float = 0.2, seed: int = 0, threads: int | None = None,
                 device: str = "auto", model_overrides: dict[str, Any] | None = None,
                 finetune_options: dict[str, Any] | None = None,
                 out_dir: str | None = None) -> None:
        self.init = init
        self.preset = preset
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.ch_names = ch_names
        self.sfreq = sfreq
        self.window_s = window_s
        self.montage = montage
        self.preprocess = preprocess
        self.val_fraction = val_fraction
        self.seed = seed
        self.threads = threads
        self.device = device
        self.model_overrides = model_overrides
        self.finetune_options = finetune_options
        self.out_dir = out_dir

    def _run_config(self, out_dir: str) -> Any:
        from neuript.config import OptimConfig, TrainConfig, from_dict, to_dict
        from neuript.train.finetune import FinetuneRunConfig

        options = dict(self.finetune_options or {})
        reserved = sorted(set(options) & _RESERVED)
        if reserved:
            raise ValueError(f"finetune_options may not set {reserved}: they are estimator "
                             "parameters or fixed by it")
        optim = replace(FinetuneRunConfig().optim, lr=self.lr)
        optim = from_dict(OptimConfig, {**to_dict(optim), **options.pop("optim", {})})
        train = TrainConfig(batch_size=self.batch_size, epochs=self.epochs, threads=self.threads,
                            device=self.device)
        train = from_dict(TrainConfig, {**to_dict(train), **options.pop("train", {})})
        return FinetuneRunConfig(init=self.init, preset=self.preset, seeds=(self.seed,),
                                 model_overrides=dict(self.model_overrides or {}), optim=optim,
                                 train=train, out_dir=out_dir, report=False, **options)

    def fit(self, X: Any, y: Any, groups: Any = None) -> NeurIPTClassifier:
        """Fine-tune on epochs ``X`` with labels ``y`` (``groups``: e.g. subjects, for the
        hold-out split).

        Returns
        -------
        self : NeurIPTClassifier
        """
        from neuript.data.montage import pooling_groups
        from neuript.model_folder import load_classifier
        from neuript.train.finetune import run_finetune
        from neuript.train.finetune_seed import neuript_model_config

        run_dir = self.out_dir or tempfile.mkdtemp(prefix="neuript_sklearn_")
        try:
            cfg = self._run_config(str(run_dir))
            task = self._fit_task(X, y, groups, neuript_model_config(cfg).total_merge)
            result = run_finetune(cfg, task=task)
            row = result.per_seed[0]
            loaded = load_classifier(row["model_dir"])
        finally:
            if self.out_dir is None:
                shutil.rmtree(run_dir, ignore_errors=True)
        self._set_fitted_input(task)
        self.model_ = loaded.model
        self.group_mask_ = pooling_groups(list(task.ch_names), task.positions,
                                          loaded.info.scheme).mask
        self.best_epoch_, self.val_metrics_ = int(row["best_epoch"]), dict(row["val"])
        self.model_dir_ = Path(row["model_dir"]) if self.out_dir is not None else None
        return self

    def model_input(self, X: Any) -> np.ndarray:
        """The network's input: :meth:`epoch_windows` after the contract's A-law, (N, C, W)."""
        from neuript.data.preprocess import alaw

        windows = self.epoch_windows(X)
        pre = self.preprocess_
        return alaw(windows, pre.alaw_a) if pre.compression == "alaw" else windows

    def predict_logits(self, X: Any, batch_size: int = 128) -> np.ndarray:
        """Unnormalised class scores, shape (n_epochs, K), float32, columns as ``classes_``."""
        import torch

        from neuript.train.evaluate import resolve_device

        check_is_fitted(self, "model_")
        signals = torch.from_numpy(np.ascontiguousarray(self.model_input(X), np.float32))
        device = resolve_device(self.device)
        model = self.model_.to(device).eval()
        positions = torch.from_numpy(self.positions_).to(device)
        group_mask = torch.from_numpy(self.group_mask_).to(device)
        out = []
        with torch.no_grad():
            for lo in range(0, len(signals), batch_size):
                chunk = signals[lo: lo + batch_size].to(device)
                b, c = chunk.shape[:2]
                logits = model(chunk, positions.expand(b, c, 3),
                               torch.ones(b, c, dtype=torch.bool, device=device),
                               group_mask.expand(b, -1, c)).logits
                out.append(logits.float().cpu().numpy())
        return np.concatenate(out)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Softmax class probabilities, shape (n_epochs, K), columns as ``classes_``."""
        from scipy.special import softmax

        return softmax(self.predict_logits(X).astype(np.float64), axis=1)

    def to_module(self, raw_input: bool = False) -> Any:
        """The fitted network as a :class:`neuript.module.NeurIPTModule` (same weights)."""
        from neuript.module import NeurIPTModule

        check_is_fitted(self, "model_")
        return NeurIPTModule(self.model_, self.ch_names_, self.positions_, self.group_mask_,
                             sfreq_hz=self.preprocess_.sfreq_hz, n_times=self.window_samples_,
                             raw_input=raw_input, alaw_a=self.preprocess_.alaw_a
                             if self.preprocess_.compression == "alaw" else None)


class BandPowerClassifier(EpochsClassifierBase):
    """Log band power + logistic regression on the same windows as :class:`NeurIPTClassifier`.

    Wraps :class:`neuript.baselines.bandpower.BandPowerClassifier`; C is chosen on the same
    validation hold-out. Parameters shared with :class:`NeurIPTClassifier` mean the same.

    Parameters
    ----------
    ch_names, sfreq, window_s, montage, preprocess, val_fraction, seed
        As in :class:`NeurIPTClassifier` (``window_s`` None: the whole resampled epoch).
    cs : sequence of float
        Candidate inverse regularisation strengths.
    max_iter : int
        Iterations of the logistic-regression solver.

    Attributes
    ----------
    classes_ : ndarray, shape (K,)
    model_ : neuript.baselines.bandpower.BandPowerClassifier
        The fitted features + scaler + logistic regression (``model_.c_``: the chosen C).
    """

    def __init__(self, ch_names: Sequence[str] | None = None, sfreq: float | None = None,
                 window_s: float | None = None, montage: str | Sequence[str] = "auto",
                 preprocess: PreprocessConfig | None = None, cs: Sequence[float] = DEFAULT_CS,
                 val_fraction: float = 0.2, seed: int = 0, max_iter: int = 2000) -> None:
        self.ch_names = ch_names
        self.sfreq = sfreq
        self.window_s = window_s
        self.montage = montage
        self.preprocess = preprocess
        self.cs = cs
        self.val_fraction = val_fraction
        self.seed = seed
        self.max_iter = max_iter

    def fit(self, X: Any, y: Any, groups: Any = None) -> BandPowerClassifier:
        """Fit on epochs ``X`` with labels ``y``; C chosen on the hold-out of ``groups``.

        Returns
        -------
        self : BandPowerClassifier
        """
        from neuript.baselines.bandpower import BandPowerClassifier as BandPower

        task = self._fit_task(X, y, groups, merge=1)
        train, val = task.indices("train"), task.indices("val")
        self.model_ = BandPower(sfreq_hz=float(task.preprocess.sfreq_hz), cs=tuple(self.cs),
                                max_iter=self.max_iter)
        self.model_.fit(task.signals[train], task.labels[train], task.signals[val],
                        task.labels[val])
        self._set_fitted_input(task)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n_epochs, K), columns as ``classes_``."""
        check_is_fitted(self, "model_")
        windows = self.epoch_windows(X)
        proba = np.zeros((len(windows), len(self.classes_)))
        proba[:, self.model_.classes_] = self.model_.predict_proba(windows)
        return proba
