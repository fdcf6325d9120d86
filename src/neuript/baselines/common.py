"""What the convolutional baselines share: input checks, the forward recipe, max-norm.

Every baseline exposes the classifier interface of :class:`neuript.model.neuript.NeurIPTClassifier`
(``forward(signals, positions, channel_mask, group_mask) -> ClassifierOutput``), so one training
loop and one evaluation path serve NeurIPT and the baselines. Positions and pooling groups are
accepted and ignored: these models see a fixed channel order.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neuript.errors import ContractError, NeuriptError
from neuript.model.outputs import ClassifierOutput


def check_positive(name: str, value: float) -> None:
    """Raise a :class:`NeuriptError` naming ``name`` unless ``value`` > 0."""
    if not value > 0:
        raise NeuriptError(f"{name} must be > 0; got {value!r}")


def check_probability(name: str, value: float) -> None:
    """Raise a :class:`NeuriptError` naming ``name`` unless 0 <= ``value`` < 1."""
    if not 0.0 <= value < 1.0:
        raise NeuriptError(f"{name} must be in [0, 1); got {value!r}")


@torch.no_grad()
def max_norm_(weight: Tensor, max_norm: float) -> None:
    """Rescale, in place, each output unit's weights to an L2 norm of at most ``max_norm``.

    Parameters
    ----------
    weight : Tensor, shape (out, ...)
        A parameter whose first axis indexes output units (conv filters, dense rows).
    max_norm : float
        The largest L2 norm allowed for one unit's incoming weights (Keras ``max_norm``).
    """
    weight.copy_(torch.renorm(weight, p=2, dim=0, maxnorm=max_norm))


class BaselineClassifier(nn.Module):
    """Base of the convolutional baselines: validates the input, runs features then head.

    Subclasses define ``forward_features(signals (B, C, T)) -> (B, F)`` and a ``head``
    (``nn.Linear``), and may override :meth:`apply_constraints`.

    Parameters
    ----------
    n_channels : int
        Channels C the model is built for (fixed order).
    n_samples : int
        Samples T per window.
    n_classes : int
        Number of classes.
    sfreq_hz : float
        Sampling rate of the input, used to scale kernel lengths.
    """

    def __init__(self, n_channels: int, n_samples: int, n_classes: int, sfreq_hz: float) -> None:
        super().__init__()
        for name, value in (("n_channels", n_channels), ("n_samples", n_samples),
                            ("sfreq_hz", sfreq_hz)):
            check_positive(name, value)
        if n_classes < 2:
            raise NeuriptError(f"n_classes must be >= 2; got {n_classes!r}")
        self.n_channels = int(n_channels)
        self.n_samples = int(n_samples)
        self.n_classes = int(n_classes)
        self.sfreq_hz = float(sfreq_hz)

    def forward_features(self, signals: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Map signals (B, C, T) to features (B, F)."""
        raise NotImplementedError

    def forward(
        self,
        signals: Tensor,
        positions: Tensor | None = None,
        channel_mask: Tensor | None = None,
        group_mask: Tensor | None = None,
    ) -> ClassifierOutput:
        """Classify a batch of windows.

        Parameters
        ----------
        signals : Tensor, shape (B, C, T), float
            Model input (µV after the input contract's compression).
        positions : Tensor, shape (B, C, 3) | None
            Ignored (fixed channel order).
        channel_mask : Tensor, shape (B, C), bool | None
            False for padded channels, which are zeroed before the first layer.
        group_mask : Tensor, shape (B, G, C), bool | None
            Ignored.

        Returns
        -------
        output : ClassifierOutput
            ``logits`` (B, n_classes), ``aux_loss`` a zero scalar, ``features`` (B, F).
        """
        del positions, group_mask
        self._check_input(signals)
        if channel_mask is not None:
            signals = signals * channel_mask.unsqueeze(-1).to(signals.dtype)
        features = self.forward_features(signals)
        logits = self.head(features)
        return ClassifierOutput(logits=logits, aux_loss=signals.new_zeros(()), features=features)

    def apply_constraints(self) -> None:
        """Apply the paper's weight constraints; call after every optimizer step."""

    def no_weight_decay(self) -> set[str]:
        """Parameter names to exclude from weight decay (none beyond the ``dim() < 2`` rule)."""
        return set()

    def reset_head(self, n_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``n_classes`` classes."""
        if n_classes < 2:
            raise NeuriptError(f"n_classes must be >= 2; got {n_classes!r}")
        self.n_classes = int(n_classes)
        self.head = nn.Linear(self.head.in_features, n_classes).to(self.head.weight.device)

    def _check_input(self, signals: Tensor) -> None:
        expected = (self.n_channels, self.n_samples)
        if signals.dim() != 3 or tuple(signals.shape[1:]) != expected:
            raise ContractError(
                f"{type(self).__name__}: signals must have shape (B, {expected[0]}, "
                f"{expected[1]}) (B, channels, samples); got {tuple(signals.shape)}"
            )
