"""Shared test data for fine-tuning, evaluation, prediction and report tests.

A reduced MentalArithmetic task built from the real EEGMAT files of four subjects (two training,
one validation, one test subject of the paper's split), and a micro NeurIPT configuration small
enough to train for a few epochs on a CPU in seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from neuript.paths import data_root

SUBJECTS = ("Subject00", "Subject01", "Subject28", "Subject33")
"""Two train subjects, one validation subject (28-31) and one test subject (32-35)."""
MICRO = {
    "d_model": 16, "n_heads": 2, "d_ff": 16, "merge_factors": [1, 4],
    "moe.experts_per_block": [0, 2], "moe.expert_hidden": 16, "moe.shared_hidden": 16,
    "head_hidden": 16, "dropout": 0.0,
}
"""ModelConfig overrides of a micro NeurIPT (2 blocks, one MoE layer pair)."""


def eegmat_dir() -> Path:
    """The bundled EEGMAT folder (skips the test when the data root lacks it)."""
    folder = data_root() / "eegmat"
    if not (folder / "Subject00_1.edf").is_file():
        pytest.skip(f"EEGMAT not found under {folder}")
    return folder


def reduced_task(tmp_dir: Path):
    """MentalArithmetic built (uncached) from the files of :data:`SUBJECTS` only."""
    from neuript.data.tasks import build_task

    src = eegmat_dir()
    folder = tmp_dir / "eegmat"
    folder.mkdir(parents=True, exist_ok=True)
    for subject in SUBJECTS:
        for run in (1, 2):
            link = folder / f"{subject}_{run}.edf"
            if not link.exists():
                link.symlink_to(src / link.name)
    return build_task("mental_arithmetic", data_dir=folder, cache=False)


def n_windows(duration_s: float, window_s: float) -> int:
    """floor(duration / window): the windows predict must return."""
    return int(math.floor(duration_s / window_s + 1e-9))


def thin(task, every: int):
    """Keep every ``every``-th window (in task order) so CPU tests train in seconds."""
    import dataclasses

    import numpy as np

    rows = np.arange(0, len(task.labels), every)
    return dataclasses.replace(
        task, signals=task.signals[rows], labels=task.labels[rows], subjects=task.subjects[rows],
        splits=task.splits[rows], sources=task.sources[rows], starts=task.starts[rows],
    )


def micro_tcp_model(out: Path, **contract_changes) -> Path:
    """A micro NeurIPT classifier (random weights, seed 0) with the MentalArithmetic contract
    (20 TCP channels, rest/task), written to ``out``; ``contract_changes`` replace contract
    fields (``subject_norm="spectral"``)."""
    from dataclasses import replace

    import numpy as np
    import torch

    from neuript.config import InputContract, override, to_dict
    from neuript.data.montage import TCP_PAIRS, channel_position, pooling_groups
    from neuript.data.tasks.mental_arithmetic import PREPROCESS
    from neuript.model.neuript import NeurIPTClassifier
    from neuript.model.presets import preset
    from neuript.model_folder import save_classifier

    torch.manual_seed(0)
    names = [f"{a}-{b}" for a, b in TCP_PAIRS]
    groups = pooling_groups(names, np.stack([channel_position(n) for n in names]), "functional")
    model = NeurIPTClassifier(override(preset("tiny"), MICRO), 2, groups.names)
    extra = {"class_names": ["rest", "task"], "group_names": list(groups.names),
             "scheme": "functional", "preprocess": to_dict(PREPROCESS), "ch_names": names,
             "task": "mental_arithmetic", "model_kind": "neuript"}
    contract = replace(InputContract.from_preprocess(PREPROCESS, tuple(names)),
                       **contract_changes)
    save_classifier(model, out, contract, extra)
    return out
