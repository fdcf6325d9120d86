"""One switch for the model's CPU fast paths, so that a run can compare them with the plain ones.

A fast path computes the same function as the plain code it replaces (equal within float
rounding, gradients included; ``tests/test_model_fast_paths.py`` checks each one) and is taken
only where it was measured faster. Every module that has one carries a ``fast_paths: bool``
attribute, True by default:

- :class:`~neuript.model.attention.Attention`: heads of width <= 8 run
  :func:`~neuript.model.head_major.head_major_attention` instead of SDPA / matmul-softmax
  (eager fp32/fp64 CPU with one intra-op thread);
- :class:`~neuript.model.heads.PoolingHead`: the log-std statistic uses a two-pass variance
  instead of ``Tensor.var`` (about 20× faster over the time axis of a level);
- :class:`~neuript.model.encoder.NeurIPTEncoder`: the temporal code is built once per window
  length, and the spatial code is reused while the montage repeats.

:func:`~neuript.model.export.exportable_copy` turns them off, so ONNX graphs are the plain ones.

The plain path (``fast_paths=False``) is the model as it was before these were added; the speed
benchmark (``benchmarks/bench_speed.py``) times both in one process and reports the ratio.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


def set_fast_paths(model: nn.Module, enabled: bool) -> dict[str, bool]:
    """Turn every fast path of ``model`` (and its submodules) on or off.

    Parameters
    ----------
    model : nn.Module
    enabled : bool

    Returns
    -------
    previous : dict of str to bool
        Each switched module's qualified name and its setting before the call.
    """
    previous = {}
    for name, module in model.named_modules():
        if hasattr(module, "fast_paths"):
            previous[name] = module.fast_paths
            module.fast_paths = enabled
    return previous


@contextmanager
def fast_paths(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Run a block with ``model``'s fast paths on (or off), restoring each setting afterwards.

    Examples
    --------
    >>> with fast_paths(model, False):  # doctest: +SKIP
    ...     plain_logits = model(*inputs).logits
    """
    previous = set_fast_paths(model, enabled)
    try:
        yield model
    finally:
        modules = dict(model.named_modules())
        for name, value in previous.items():
            modules[name].fast_paths = value
