"""neuript: NeurIPT, the EEG foundation model for neural interfaces, as a toolkit.

The flow: ``read_recording`` → montage → preprocessing → window corpus → AAMP pretraining →
IILP fine-tuning → evaluation → prediction on new recordings. See the README for the CLI.
"""

__version__ = "0.1.0"

_API = ("finetune", "evaluate", "predict", "embed", "export", "task_from_epochs", "build_module")


def __getattr__(name: str):
    """Import the Python API (:mod:`neuript.api`) on first use, keeping ``import neuript`` light."""
    if name in _API:
        from neuript import api

        return getattr(api, name)
    raise AttributeError(f"module 'neuript' has no attribute {name!r}")
