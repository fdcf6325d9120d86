"""The documentation examples (docs/examples/*.py) run on the bundled data and say what they did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from _finetune_data import eegmat_dir

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


def run_example(name: str, *args: str) -> str:
    eegmat_dir()  # skips without the bundled data
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, name, *args], cwd=EXAMPLES, env=env, text=True,
                          capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_predict_raw_annotations(tmp_path):
    out = run_example("predict_raw_annotations.py", str(tmp_path))
    assert "windows per predicted class:" in out
    assert (tmp_path / "predictions_on_raw.png").stat().st_size > 10_000
    assert (tmp_path / "run" / "seed_0" / "model" / "model.safetensors").is_file()


def test_cross_val_epochs():
    out = run_example("cross_val_epochs.py")
    lines = [line for line in out.splitlines() if "balanced accuracy per fold" in line]
    assert len(lines) == 2 and lines[0].startswith("band power") and "NeurIPT" in lines[1]


@pytest.mark.parametrize("name", ["custom_training_loop.py"])
def test_custom_training_loop(name):
    out = run_example(name)
    epochs = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 3
    assert float(epochs[-1].rsplit(" ", 1)[1]) > 0.6  # the loop learns on the held-out subject
