"""Pretrained checkpoints shipped inside the package, found by name, offline.

``--init neuript-small`` (every command that takes ``--init``), ``FinetuneRunConfig(init=…)``
and ``NeurIPTClassifier.from_pretrained("neuript-small")`` resolve a name here before they
treat it as a path. Each checkpoint folder holds ``model.safetensors``, ``config.json`` (with
the corpus provenance the subject-overlap guard reads) and ``MODEL_CARD.md``; nothing is fetched
at run time. ``benchmarks/build_checkpoint.py`` rebuilds them.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
NAMES: tuple[str, ...] = ("neuript-small",)
"""Names of the shipped checkpoints."""


def bundled_checkpoint(name: str) -> Path | None:
    """The folder of shipped checkpoint ``name``, or None when ``name`` is not one (or its
    weights are missing from this installation)."""
    if name not in NAMES:
        return None
    folder = WEIGHTS_DIR / name
    return folder if (folder / "model.safetensors").is_file() else None
