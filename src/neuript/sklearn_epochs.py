"""The shared part of the epochs estimators of :mod:`neuript.sklearn`: input, hold-out, windows.

:class:`EpochsClassifierBase` turns ``X`` (``mne.Epochs``, or an array ``(n_epochs, n_channels,
n_times)`` in volts with ``ch_names`` / ``sfreq`` given at construction) into one
:class:`~neuript.data.recording.Recording` per epoch, holds out a validation share of the
training data (:meth:`EpochsClassifierBase._holdout`), builds the training task with
:func:`~neuript.data.tasks.arrays.build_array_task` (one window per epoch, from its first sample)
and cuts the same windows from new epochs at prediction time (:meth:`epoch_windows`).

Subclasses define ``__init__`` (every parameter stored unchanged, as sklearn requires, with
``ch_names``, ``sfreq``, ``window_s``, ``montage``, ``preprocess``, ``val_fraction`` and
``seed`` among them), ``fit`` and ``predict_proba``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from neuript.config import PreprocessConfig
from neuript.data.recording import Recording
from neuript.data.tasks.base import TaskWindows

log = logging.getLogger(__name__)

LIKELY_MICROVOLTS_V = 0.01
"""An epoch array reaching 10 mV is probably not in volts (a warning is logged)."""


class EpochsClassifierBase(ClassifierMixin, BaseEstimator):
    """Epochs in, labels out: recordings, hold-out split, task and windows (module docs)."""

    def __sklearn_tags__(self):  # sklearn >= 1.6
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        return tags

    # ---- input --------------------------------------------------------------------------
    def _recordings(self, X: Any) -> list[Recording]:
        """One Recording (volts) per epoch of ``X``."""
        from neuript.data.mne_bridge import is_mne_epochs, recordings_from_epochs

        if isinstance(X, list | tuple) and X and all(is_mne_epochs(part) for part in X):
            # what sklearn's _safe_indexing makes of an Epochs in cross_val_score: one per row
            return [rec for part in X for rec in self._recordings(part)]
        if is_mne_epochs(X):
            for param, value in (("ch_names", list(X.ch_names)), ("sfreq", X.info["sfreq"])):
                given = getattr(self, param)
                if given is not None and (list(given) if param == "ch_names" else given) != value:
                    raise ValueError(f"{param}={given!r} differs from the Epochs' {value!r}")
            return recordings_from_epochs(X)
        data = np.asarray(X, dtype=np.float64)
        if data.ndim != 3:
            raise ValueError(f"X must be mne.Epochs or an array (n_epochs, n_channels, n_times) "
                             f"in volts; got shape {data.shape}")
        if data.shape[0] == 0 or data.shape[2] == 0:
            raise ValueError(f"X holds no epochs or no samples (shape {data.shape})")
        if self.ch_names is None or self.sfreq is None:
            raise ValueError("an array X needs ch_names= and sfreq= at construction")
        if data.shape[1] != len(self.ch_names):
            raise ValueError(f"X has {data.shape[1]} channels but ch_names has "
                             f"{len(self.ch_names)}")
        if not np.isfinite(data).all():
            raise ValueError("Input X contains NaN or infinity")
        if np.abs(data).max() > LIKELY_MICROVOLTS_V:
            log.warning("X reaches %.3g: epochs must be in volts (MNE's convention), not µV",
                        np.abs(data).max())
        return [Recording.from_array(epoch, self.sfreq, list(self.ch_names), unit="V",
                                     source=f"<X[{i}]>") for i, epoch in enumerate(data)]

    def _preprocess_cfg(self) -> PreprocessConfig:
        from neuript.data.tasks._byod import default_preprocess

        return self.preprocess if self.preprocess is not None else default_preprocess(4.0, None,
                                                                                       None)

    def _holdout(self, y_idx: np.ndarray, groups: Any) -> np.ndarray:
        """(N,) bool: the epochs held out for model selection (see the module docstring)."""
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        index = np.zeros((len(y_idx), 1))
        if groups is not None and len(np.unique(groups)) >= 2:
            splitter = GroupShuffleSplit(1, test_size=self.val_fraction, random_state=self.seed)
            _, val = next(splitter.split(index, y_idx, np.asarray(groups)))
        elif np.bincount(y_idx).min() >= 2:
            splitter = StratifiedShuffleSplit(1, test_size=self.val_fraction,
                                              random_state=self.seed)
            _, val = next(splitter.split(index, y_idx))
        else:
            _, val = next(ShuffleSplit(1, test_size=self.val_fraction,
                                       random_state=self.seed).split(index))
        held = np.zeros(len(y_idx), dtype=bool)
        held[val] = True
        missing = sorted(set(range(int(y_idx.max()) + 1)) - set(y_idx[~held].tolist()))
        if missing or held.all():
            raise ValueError(f"the validation hold-out leaves no training epoch of class(es) "
                             f"{[self.classes_[k] for k in missing]}; lower val_fraction or give "
                             "more epochs or groups")
        return held

    def _fit_task(self, X: Any, y: Any, groups: Any, merge: int) -> TaskWindows:
        """Set ``classes_`` and build the task: train / val hold-out / test = copy of val."""
        from neuript.data.tasks._byod import target_samples
        from neuript.data.tasks.arrays import build_array_task

        recordings = self._recordings(X)
        y = np.asarray(y)
        if y.shape != (len(recordings),):
            raise ValueError(f"y must hold one label per epoch ({len(recordings)}), got "
                             f"shape {y.shape}")
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y needs at least 2 classes; got 1 class {self.classes_.tolist()}")
        names = [str(c) for c in self.classes_]
        if len(set(names)) < len(names):
            names = [f"class_{k}" for k in range(len(names))]
        held = self._holdout(y_idx, groups)
        cfg = self._preprocess_cfg()
        rec = recordings[0]
        n_target = target_samples(rec.n_samples, rec.sfreq_hz, cfg.sfreq_hz)
        window = (int(round(self.window_s * cfg.sfreq_hz)) if self.window_s is not None
                  else n_target // merge * merge)
        if not 0 < window <= n_target:
            raise ValueError(f"epochs of {n_target} samples at {cfg.sfreq_hz:g} Hz cannot hold a "
                             f"window of {window} samples (window_s={self.window_s!r})")
        subjects = (np.asarray(groups).astype(str) if groups is not None
                    else np.array([f"epoch{i}" for i in range(len(y))]))
        items = [{"recording": r, "label": names[k], "subject": s,
                  "split": "val" if h else "train"}
                 for r, k, s, h in zip(recordings, y_idx, subjects, held)]
        # the run's test split: a copy of the hold-out under other subject names (never scored)
        items += [dict(item, split="test", subject=f"{item['subject']} (copy)")
                  for item in items if item["split"] == "val"]
        self.input_ch_names_ = tuple(rec.ch_names)
        return build_array_task(items, window_s=window / cfg.sfreq_hz,
                                stride_s=max(n_target, window) / cfg.sfreq_hz,
                                split="column", class_names=names, montage=self.montage,
                                preprocess=cfg, name=type(self).__name__)

    def _set_fitted_input(self, task: TaskWindows) -> None:
        self.ch_names_ = tuple(task.ch_names)
        self.positions_ = np.asarray(task.positions, np.float32)
        self.preprocess_ = task.preprocess
        self.window_samples_ = int(task.signals.shape[2])

    def epoch_windows(self, X: Any) -> np.ndarray:
        """The preprocessed window of every epoch, as the model sees it before compression.

        Parameters
        ----------
        X : mne.Epochs | ndarray, shape (n_epochs, n_channels, n_times), volts

        Returns
        -------
        windows : ndarray, shape (n_epochs, C, W), float32, µV
            Mapped to the fitted channels ``ch_names_``, resampled and band-passed; the first
            ``window_samples_`` samples of each epoch.
        """
        from neuript.data.preprocess import preprocess_continuous

        check_is_fitted(self, "window_samples_")
        recordings = self._recordings(X)
        if tuple(recordings[0].ch_names) != self.input_ch_names_:
            raise ValueError(f"X has channels {list(recordings[0].ch_names)}; the estimator was "
                             f"fitted on {list(self.input_ch_names_)}")
        out = np.empty((len(recordings), len(self.ch_names_), self.window_samples_), np.float32)
        for i, rec in enumerate(recordings):
            cont = preprocess_continuous(rec, self.preprocess_, target=list(self.ch_names_),
                                         on_unknown="drop")
            if cont.data.shape[1] < self.window_samples_:
                raise ValueError(f"epoch {i} is {cont.data.shape[1]} samples at "
                                 f"{cont.sfreq_hz:g} Hz, shorter than the fitted window of "
                                 f"{self.window_samples_}")
            out[i] = cont.data[:, : self.window_samples_]
        return out

    def predict(self, X: Any) -> np.ndarray:
        """Predicted label of every epoch, shape (n_epochs,), from ``classes_``."""
        proba = self.predict_proba(X)  # raises NotFittedError first
        return self.classes_[np.argmax(proba, axis=1)]
