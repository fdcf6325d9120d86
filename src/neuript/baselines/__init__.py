"""Reference models the paper compares against, behind NeurIPT's classifier interface.

``BASELINES`` maps a name to a model class; :func:`build` makes one for a task's shape. Every
model's ``forward(signals (B, C, T), positions=None, channel_mask=None, group_mask=None)``
returns :class:`neuript.model.outputs.ClassifierOutput`, and ``apply_constraints()`` must be
called after each optimizer step (EEGNet's max-norm bounds; a no-op elsewhere). The classical
band-power + logistic-regression baseline works on numpy arrays: :mod:`neuript.baselines.bandpower`.
"""

from __future__ import annotations

from typing import Any

from neuript.baselines.common import BaselineClassifier
from neuript.baselines.eegnet import EEGNet
from neuript.baselines.shallowconvnet import ShallowConvNet
from neuript.errors import check_option

BASELINES: dict[str, type[BaselineClassifier]] = {
    "eegnet": EEGNet,
    "shallowconvnet": ShallowConvNet,
}
"""Read-only registry: baseline name → model class."""


def build(
    name: str,
    n_channels: int,
    n_samples: int,
    n_classes: int,
    sfreq_hz: float,
    **hyper: Any,
) -> BaselineClassifier:
    """Build baseline ``name`` for windows of ``n_channels`` × ``n_samples`` at ``sfreq_hz``.

    Parameters
    ----------
    name : str
        A key of :data:`BASELINES` (``"eegnet"`` or ``"shallowconvnet"``).
    n_channels, n_samples, n_classes : int
        Channels C, samples T per window, and classes.
    sfreq_hz : float
        Sampling rate (Hz); kernel lengths scale with it.
    **hyper
        The model's paper hyper-parameters (for example ``f1=4`` or ``dropout=0.25``).

    Returns
    -------
    model : BaselineClassifier
        A freshly initialised model.
    """
    check_option("baseline", name, BASELINES)
    return BASELINES[name](n_channels, n_samples, n_classes, sfreq_hz, **hyper)


__all__ = ["BASELINES", "BaselineClassifier", "EEGNet", "ShallowConvNet", "build"]
