"""Classical baseline: log band power per channel → standardise → logistic regression.

Bands lie inside the 0.1–30 Hz band-pass of the input contract: delta 1–4, theta 4–8,
alpha 8–13, beta 13–20 and low gamma 20–30 Hz (lower edge included, upper excluded, except the
last band which includes 30 Hz). Power spectra are Welch estimates (:func:`scipy.signal.welch`,
Hann windows of 2 s or the whole window if shorter, 50% overlap); band power is the PSD
integrated over the band's bins (µV²), and the feature is its natural log.
The regularisation strength C is chosen by balanced accuracy on the validation split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import signal
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from neuript.errors import NeuriptError

logger = logging.getLogger(__name__)

BANDS_HZ: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 20.0),
    "gamma_low": (20.0, 30.0),
}
"""Frequency bands (Hz, [low, high)) of the features, inside the 0.1–30 Hz contract band."""

DEFAULT_CS = (0.001, 0.01, 0.1, 1.0, 10.0)
"""Inverse regularisation strengths tried on the validation split."""


def band_log_power(
    windows_uv: np.ndarray,
    sfreq_hz: float,
    bands_hz: dict[str, tuple[float, float]] | None = None,
    *,
    segment_s: float = 2.0,
    floor_uv2: float = 1e-12,
) -> np.ndarray:
    """Log band power of every channel of every window.

    Parameters
    ----------
    windows_uv : ndarray, shape (N, C, T), float, µV
        EEG windows.
    sfreq_hz : float
        Sampling rate.
    bands_hz : dict of str to (float, float) | None
        Bands as [low, high) in Hz; None uses :data:`BANDS_HZ`. The highest band includes its
        upper edge.
    segment_s : float
        Welch segment length in seconds (capped at the window length).
    floor_uv2 : float
        Powers are clamped to at least this before the log (flat channels).

    Returns
    -------
    features : ndarray, shape (N, C · n_bands), float64
        ln(band power in µV²), channel-major (all bands of channel 0, then channel 1, …).
    """
    bands_hz = BANDS_HZ if bands_hz is None else bands_hz
    windows_uv = np.asarray(windows_uv, dtype=np.float64)
    if windows_uv.ndim != 3:
        raise NeuriptError(f"windows_uv must have shape (N, C, T); got {windows_uv.shape}")
    nyquist = sfreq_hz / 2
    top = max(high for _, high in bands_hz.values())
    if top > nyquist:
        raise NeuriptError(
            f"bands reach {top} Hz but the Nyquist frequency at sfreq_hz={sfreq_hz} is "
            f"{nyquist} Hz; use bands below it"
        )
    nperseg = min(windows_uv.shape[-1], round(segment_s * sfreq_hz))
    freqs, psd = signal.welch(windows_uv, fs=sfreq_hz, nperseg=nperseg, axis=-1)  # (N, C, F)
    df = freqs[1] - freqs[0]
    powers = []
    for low, high in bands_hz.values():
        in_band = (freqs >= low) & ((freqs < high) | ((high == top) & (freqs <= high)))
        if not in_band.any():
            raise NeuriptError(
                f"band [{low}, {high}) Hz holds no frequency bin at resolution {df:.3g} Hz; "
                f"use longer windows or wider bands"
            )
        powers.append(psd[..., in_band].sum(axis=-1) * df)  # (N, C)
    power = np.stack(powers, axis=-1)  # (N, C, n_bands)
    return np.log(np.maximum(power, floor_uv2)).reshape(len(windows_uv), -1)


@dataclass
class BandPowerClassifier:
    """Log band power + standardisation + class-balanced logistic regression.

    Parameters
    ----------
    sfreq_hz : float
        Sampling rate of the windows.
    bands_hz : dict of str to (float, float) | None
        Bands; None uses :data:`BANDS_HZ`.
    cs : sequence of float
        Candidate inverse regularisation strengths; with a validation split the one with the
        best balanced accuracy wins (ties: the smallest C, i.e. the strongest regularisation),
        without one the middle candidate is used.
    max_iter : int
        Iterations of the logistic-regression solver.

    Attributes
    ----------
    c_ : float
        The chosen C (after :meth:`fit`).
    val_scores_ : dict of float to float
        Validation balanced accuracy of every candidate C (empty without a validation split).
    pipeline_ : sklearn Pipeline
        The fitted scaler + classifier.
    """

    sfreq_hz: float
    bands_hz: dict[str, tuple[float, float]] | None = None
    cs: Sequence[float] = DEFAULT_CS
    max_iter: int = 2000
    c_: float = field(init=False, default=float("nan"))
    val_scores_: dict[float, float] = field(init=False, default_factory=dict)
    pipeline_: Pipeline | None = field(init=False, default=None)

    def _make(self, c: float) -> Pipeline:
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(C=c, class_weight="balanced", max_iter=self.max_iter),
        )

    def features(self, windows_uv: np.ndarray) -> np.ndarray:
        """Log band powers (N, C · n_bands) of windows (N, C, T) in µV."""
        return band_log_power(windows_uv, self.sfreq_hz, self.bands_hz)

    def fit(
        self,
        windows_uv: np.ndarray,
        labels: np.ndarray,
        val_windows_uv: np.ndarray | None = None,
        val_labels: np.ndarray | None = None,
    ) -> BandPowerClassifier:
        """Fit on training windows (N, C, T) µV with labels (N,), choosing C on validation.

        Returns
        -------
        self : BandPowerClassifier
            Fitted in place (``c_``, ``val_scores_``, ``pipeline_`` set).
        """
        if not self.cs:
            raise NeuriptError("cs must hold at least one candidate C; got none")
        x_train = self.features(windows_uv)
        labels = np.asarray(labels)
        self.val_scores_ = {}
        if val_windows_uv is None or val_labels is None:
            self.c_ = float(sorted(self.cs)[len(self.cs) // 2])
        else:
            x_val = self.features(val_windows_uv)
            for c in sorted(self.cs):
                pred = self._make(c).fit(x_train, labels).predict(x_val)
                self.val_scores_[float(c)] = float(balanced_accuracy_score(val_labels, pred))
            self.c_ = max(self.val_scores_, key=lambda c: (self.val_scores_[c], -c))
            logger.info("band power: chose C=%g (validation balanced accuracy %s)", self.c_,
                        self.val_scores_)
        self.pipeline_ = self._make(self.c_).fit(x_train, labels)
        return self

    def predict_proba(self, windows_uv: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) of windows (N, C, T) µV; columns follow ``classes_``."""
        if self.pipeline_ is None:
            raise NeuriptError("BandPowerClassifier.predict_proba called before fit")
        return self.pipeline_.predict_proba(self.features(windows_uv))

    def predict(self, windows_uv: np.ndarray) -> np.ndarray:
        """Predicted labels (N,) (the class of highest probability)."""
        return self.classes_[self.predict_proba(windows_uv).argmax(axis=1)]

    @property
    def classes_(self) -> np.ndarray:
        """The labels seen in training, in the column order of :meth:`predict_proba`."""
        if self.pipeline_ is None:
            raise NeuriptError("BandPowerClassifier.classes_ read before fit")
        return self.pipeline_.classes_
