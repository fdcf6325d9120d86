"""The Python API, mirroring the command line: ``neuript.finetune(...)``, ``neuript.predict(...)``.

Each function takes keywords named like the CLI options and returns the same named result as the
matching ``run_*`` function, so a notebook and a shell script do the same work.

Examples
--------
>>> import neuript
>>> result = neuript.finetune("mental_arithmetic", init="runs/pretrain", seeds=(1, 2),
...                           out_dir="runs/ma")                          # doctest: +SKIP
>>> neuript.predict("Subject33_2.edf", "runs/ma/seed_1/model").summary   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from neuript.config import OptimConfig, TrainConfig, from_dict
from neuript.data.tasks.base import TaskWindows
from neuript.deploy import ExportResult, export_model_dir
from neuript.errors import NeuriptError
from neuript.predict import EmbeddingResult, PredictionResult, run_embed, run_predict
from neuript.train.evaluate import EvalResult, run_evaluate
from neuript.train.finetune import FinetuneResult, FinetuneRunConfig, run_finetune

__all__ = ["build_module", "embed", "evaluate", "export", "finetune", "predict",
           "task_from_epochs"]


def finetune(task: str | TaskWindows = "mental_arithmetic", **options: Any) -> FinetuneResult:
    """Fine-tune and evaluate over seeds (see :class:`FinetuneRunConfig` for every option).

    Parameters
    ----------
    task : str | TaskWindows
        A task registry name, or windows built in Python (e.g. a user's own TaskWindows).
    **options
        Fields of :class:`FinetuneRunConfig`; ``optim`` and ``train`` accept a config object or
        a dict of its fields, e.g. ``train={"epochs": 5, "batch_size": 16}``.

    Returns
    -------
    result : FinetuneResult
        Run directory, per-seed and aggregated test metrics, split hash.
    """
    known = {f.name for f in dataclasses.fields(FinetuneRunConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise NeuriptError(f"finetune: unknown option(s) {unknown}; known: {sorted(known)}")
    for key, cls in (("optim", OptimConfig), ("train", TrainConfig)):
        if isinstance(options.get(key), dict):
            base = getattr(FinetuneRunConfig(), key)
            options[key] = from_dict(cls, {**dataclasses.asdict(base), **options[key]})
    if "seeds" in options:
        options["seeds"] = tuple(options["seeds"])
    prebuilt = task if isinstance(task, TaskWindows) else None
    name = task.name if isinstance(task, TaskWindows) else task
    cfg = FinetuneRunConfig(task=name, **options)
    return run_finetune(cfg, task=prebuilt)


def evaluate(model_dir: str | os.PathLike, task: str | TaskWindows, **options: Any) -> EvalResult:
    """Evaluate a fine-tuned model on a task split (see :func:`run_evaluate`)."""
    return run_evaluate(model_dir, task, **options)


def predict(recording: Any, model_dir: str | os.PathLike, **options: Any) -> PredictionResult:
    """Class probabilities per window of a new recording: a path, a Recording or an
    ``mne.io.Raw`` (see :func:`run_predict`; ``.to_annotations()`` for ``raw.set_annotations``)."""
    return run_predict(recording, model_dir, **options)


def embed(recording: Any, model_dir: str | os.PathLike, **options: Any) -> EmbeddingResult:
    """Pooled features per window of a new recording, path, Recording or ``mne.io.Raw`` (see
    :func:`run_embed`)."""
    return run_embed(recording, model_dir, **options)


def task_from_epochs(epochs: Any, **options: Any) -> TaskWindows:
    """A labelled task from ``mne.Epochs`` (see :func:`neuript.data.tasks.epochs.task_from_epochs`);
    pass it to :func:`finetune`."""
    from neuript.data.tasks.epochs import task_from_epochs as build

    return build(epochs, **options)


def build_module(n_chans: int, n_outputs: int, n_times: int, sfreq: float,
                 **options: Any) -> Any:
    """NeurIPT as a plain ``torch.nn.Module`` for your own training loop (see
    :func:`neuript.module.build_module`)."""
    from neuript.module import build_module as build

    return build(n_chans, n_outputs, n_times, sfreq, **options)


def export(model_dir: str | os.PathLike, **options: Any) -> ExportResult:
    """Export a fine-tuned model to ONNX, checked against PyTorch (see :func:`export_model_dir`);
    ``predict(..., engine="onnx")`` then runs it with ONNX Runtime."""
    return export_model_dir(model_dir, **options)
