"""The fine-tuning report: lobe occlusion table, confusion counts, and REPORT.md with figures."""

from __future__ import annotations

import json

import numpy as np
import torch

from _finetune_data import MICRO
from neuript.config import InputContract, override
from neuript.report import write_report

TCP = ("Fp1-F7", "F7-T7", "T7-P7", "P7-O1", "Fp2-F8", "F8-T8", "T8-P8", "P8-O2", "T7-C3",
       "C3-Cz", "Cz-C4", "C4-T8", "Fp1-F3", "F3-C3", "C3-P3", "P3-O1", "Fp2-F4", "F4-C4",
       "C4-P4", "P4-O2")


OCCLUSION = {"split": "test", "n_windows": 40, "null_threshold": 0.05, "lobes": {
    name: {"drop": drop, "ci95": [drop - 0.02, drop + 0.02], "bacc_drop": drop, "share": share,
           "used": drop > 0.05}
    for name, drop, share in (("Frontal", 0.0, 0.0), ("Central-Parietal", 0.01, 0.1),
                              ("Occipital", 0.09, 0.9), ("Temporal-L", -0.01, 0.0),
                              ("Temporal-R", 0.0, 0.0))}}
"""A lobe_occlusion record as neuript.train.attribution writes it."""


def _fake_run(run_dir):
    """A run directory as run_finetune writes it, with a micro classifier as the model."""
    from neuript.data.montage import channel_position, pooling_groups
    from neuript.model.neuript import NeurIPTClassifier
    from neuript.model.presets import preset

    torch.manual_seed(0)
    positions = np.array([channel_position(n) for n in TCP])
    groups = pooling_groups(list(TCP), positions, "functional")
    model = NeurIPTClassifier(override(preset("tiny"), MICRO), 2, groups.names)
    seed_dir = run_dir / "seed_1"
    model.save_pretrained(seed_dir / "model", InputContract(channels=TCP),
                          {"class_names": ["rest", "task"], "ch_names": list(TCP),
                           "scheme": "functional"})
    curves = [{"epoch": e, "train_loss": 0.7 - 0.1 * e, "val_loss": 0.6 - 0.05 * e,
               "val_balanced_accuracy": 0.5 + 0.1 * e, "selected": True} for e in (1, 2, 3)]
    (seed_dir / "curves.jsonl").write_text("\n".join(json.dumps(r) for r in curves) + "\n")
    rows = ["window_id,source,start,subject,label,predicted,p_rest,p_task"]
    rows += [f"{i},f.edf,0,S,{i % 2},{int(i % 3 == 0)},0.5,0.5" for i in range(12)]
    (seed_dir / "test_predictions.csv").write_text("\n".join(rows) + "\n")
    test = {"balanced_accuracy": 0.75, "auroc": 0.8, "auc_pr": 0.7, "cohen_kappa": 0.5,
            "weighted_f1": 0.74}
    agg = {k: {"mean": v, "std": 0.0, "ci95_low": v, "ci95_high": v, "n": 1}
           for k, v in test.items()}
    metrics = {"task": "mental_arithmetic", "model": "neuript", "init": "scratch",
               "scheme": "functional", "split_hash": "abc", "counts": {},
               "per_seed": [{"seed": 1, "best_epoch": 3, "test": test,
                             "model_dir": str(seed_dir / "model"),
                             "lobe_occlusion": OCCLUSION}], "aggregate": agg}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "split_manifest.json").write_text(json.dumps({"class_names": ["rest", "task"]}))
    return model, groups


def test_write_report(tmp_path):
    _fake_run(tmp_path)
    path = write_report(tmp_path)
    text = path.read_text()
    for name in ("curves.png", "confusion.png", "lobes.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
        assert f"({name})" in text
    assert "| balanced_accuracy | 75.00 ± 0.00 [75.00, 75.00] |" in text
    # the lobe table shows the run's occlusion record, and names the lobe above its interval
    assert "| Occipital | +0.0900 [+0.0700, +0.1100] | +9.0 | 90.0% | yes |" in text
    assert "| Temporal-L | -0.0100 [-0.0300, +0.0100] | -1.0 | 0.0% | no |" in text
    assert "Lobes used (drop above the permutation threshold +0.0500 nats): Occipital." in text


def test_report_says_when_no_lobe_is_used(tmp_path):
    _fake_run(tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for lobe in metrics["per_seed"][0]["lobe_occlusion"]["lobes"].values():
        lobe["used"] = False
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert "No lobe's drop exceeds the permutation threshold" in write_report(tmp_path).read_text()
