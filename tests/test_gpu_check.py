"""``benchmarks/gpu_check.sh`` without a GPU: one line, exit 0, nothing run or written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
RESULTS = SCRIPT.parent / "results"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: the check would run")
def test_gpu_check_skips_cleanly_without_a_gpu(tmp_path):
    assert os.access(SCRIPT, os.X_OK), f"{SCRIPT} is not executable"
    before = {p.name: p.stat().st_mtime_ns for p in RESULTS.glob("gpu_check.*")}
    out = tmp_path / "out"
    env = {**os.environ, "GPU_CHECK_OUT": str(out), "GPU_CHECK_WORK": str(tmp_path / "work")}
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == [
        "gpu_check: skipped, no CUDA GPU visible to torch (nothing run, nothing written)"]
    assert not out.exists() and not (tmp_path / "work").exists()
    assert {p.name: p.stat().st_mtime_ns for p in RESULTS.glob("gpu_check.*")} == before
