"""Named outputs shared by every classifier (NeurIPT and the baselines).

Kept in its own small module so that ``neuript.model.neuript`` and ``neuript.baselines`` can both
import it without importing each other.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class ClassifierOutput(NamedTuple):
    """What a classifier's ``forward`` returns.

    Attributes
    ----------
    logits : Tensor, shape (B, n_classes), float
        Unnormalised class scores.
    aux_loss : Tensor, shape (), float
        Auxiliary loss to add to the task loss (the MoE load-balancing loss for NeurIPT, before
        its weight; a zero scalar for models without one).
    features : Tensor, shape (B, F), float
        The pooled representation the classification head reads (for probes and embeddings).
    """

    logits: Tensor
    aux_loss: Tensor
    features: Tensor
