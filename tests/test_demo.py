"""The one-command demo: flags, and the whole quick pipeline on the bundled data (~1 min)."""

from __future__ import annotations

import json

from neuript.demo import QUICK, DemoConfig, main, parse_args


def test_parse_args_defaults_and_quick():
    assert parse_args([]) == DemoConfig()
    quick = parse_args(["--quick", "--out", "x", "--seeds", "1", "2"])
    assert quick.out == "x" and quick.seeds == (1, 2)
    assert quick.preset == QUICK.preset and quick.model_overrides == QUICK.model_overrides
    assert parse_args(["--max-minutes", "2.5"]).pretrain_minutes == 2.5


def test_quick_demo_end_to_end(tmp_path, capsys):
    main(["--quick", "--out", str(tmp_path), "--threads", "1"])
    table = capsys.readouterr().out
    for row in ("NeurIPT (AAMP-pretrained)", "NeurIPT (from scratch)", "EEGNet"):
        assert row in table
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == {"NeurIPT (AAMP-pretrained)", "NeurIPT (from scratch)", "EEGNet"}
    for summary in results.values():
        assert {"balanced_accuracy", "auroc", "auc_pr"} <= set(summary)
    assert (tmp_path / "pretrain" / "pretrained" / "model.safetensors").is_file()
    report = (tmp_path / "REPORT.md").read_text()
    assert "| model | balanced_accuracy | auroc | auc_pr |" in report
    assert (tmp_path / "finetune" / "neuript_pretrained" / "REPORT.md").is_file()
