"""The NeurIPT model: embedding, encoder, masking, decoder, heads, presets.

Shape glossary (used in every docstring and shape comment of this package)

=========  =================================================================================
Symbol     Meaning
=========  =================================================================================
``B``      batch (windows)
``C``      channels (padded to the batch maximum; ``channel_mask`` (B, C) True = real)
``T``      samples per window; NeurIPT has one token per sample, so also tokens per channel
           at level 0
``L``      tokens per channel at one encoder level (``T`` divided by the merges so far)
``N``      tokens in a flattened batch (``B·C·L``) or sequences in a batched attention call
``d``      model width (``ModelConfig.d_model``)
``H``      attention heads
``E``      routed experts of an MoE layer
``k``      experts per token (``MoEConfig.k_for(E)``)
``A``      token-expert assignments (``N·k``, fewer after capacity dropping)
``G``      pooling groups (lobes)
=========  =================================================================================

Units: signals are compressed µV (A-law, see :mod:`neuript.config`); positions are metres in
the fixed head frame. This package never imports :mod:`neuript.data` or MNE.
"""

from neuript.model.attention import Attention
from neuript.model.embed import SpatialCode, TokenEmbedding, temporal_code
from neuript.model.encoder import EncoderOutput, NeurIPTEncoder
from neuript.model.moe import MoEFeedForward, MoEOutput, SwiGLU
from neuript.model.presets import PRESETS, ParamCount, count_parameters, preset

__all__ = [
    "PRESETS",
    "Attention",
    "EncoderOutput",
    "MoEFeedForward",
    "MoEOutput",
    "NeurIPTEncoder",
    "ParamCount",
    "SpatialCode",
    "SwiGLU",
    "TokenEmbedding",
    "count_parameters",
    "preset",
    "temporal_code",
]
