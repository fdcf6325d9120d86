"""The one-command demo: flags, and the whole quick pipeline on the bundled data (~1 min)."""

from __future__ import annotations

import json

from neuript.demo import QUICK, DemoConfig, main, parse_args


def test_parse_args_defaults_and_quick():
    assert parse_args([]) == DemoConfig()
    assert DemoConfig().init == "neuript-small" and DemoConfig().pretrain_steps == 0
    assert parse_args(["--pretrain-steps", "60"]).pretrain_steps == 60
    quick = parse_args(["--quick", "--out", "x", "--seeds", "1", "2"])
    assert quick.out == "x" and quick.seeds == (1, 2)
    assert quick.preset == QUICK.preset and quick.model_overrides == QUICK.model_overrides
    assert parse_args(["--max-minutes", "2.5"]).max_minutes == 2.5
    assert DemoConfig().max_minutes is None  # bounded by work unless asked


def test_demo_estimate_and_warnings_are_plain(tmp_path):
    from types import SimpleNamespace

    from neuript.demo import estimate_minutes, write_demo_report

    plan = estimate_minutes(DemoConfig())  # fine-tunes the shipped checkpoint: no pretraining
    assert set(plan) == {"fine-tuning"} and 3 < sum(plan.values()) < 15
    own = estimate_minutes(DemoConfig(pretrain_steps=60))
    assert set(own) == {"corpus", "pretraining", "fine-tuning"} and own["pretraining"] > 0
    failed = SimpleNamespace(
        aggregate={"balanced_accuracy": {"mean": 0.5, "std": 0.0, "ci95_low": 0.5,
                                         "ci95_high": 0.5, "n": 1}},
        per_seed=[{"seed": 1, "warnings": ["validation balanced accuracy never left chance"]}],
        run_dir=tmp_path / "x", split_hash="h")
    text = write_demo_report(tmp_path, {"NeurIPT (from scratch)": (failed, 1.0)}, {},
                             DemoConfig(max_minutes=2.0))
    assert "WARNING: NeurIPT (from scratch), seed 1: validation balanced accuracy never" in text
    assert "capped at 2 wall-clock minutes" in text
    assert "WARNING" in (tmp_path / "REPORT.md").read_text()


def test_subject_norm_reaches_every_row_and_the_table_says_so(tmp_path, monkeypatch):
    """``--subject-norm spectral``: every fine-tuning row gets it, and the table is flagged as
    transductive (the paper's protocol is ``none``, the default)."""
    from types import SimpleNamespace

    import neuript.train.finetune as finetune
    from neuript.demo import finetune_rows, write_demo_report

    cfg = parse_args(["--subject-norm", "spectral", "--subjects-per-split", "1"])
    assert cfg.subject_norm == "spectral" and DemoConfig().subject_norm == "none"
    seen = {}

    def fake(run_cfg, task=None):
        seen[run_cfg.model, run_cfg.init] = run_cfg.subject_norm
        return SimpleNamespace(aggregate={}, per_seed=[], run_dir=tmp_path, split_hash="h")

    monkeypatch.setattr(finetune, "run_finetune", fake)
    finetune_rows(cfg, "neuript-small", tmp_path)
    assert len(seen) == 4 and set(seen.values()) == {"spectral"}, seen
    row = {"band power + LR": (SimpleNamespace(
        aggregate={"balanced_accuracy": {"mean": 0.8, "std": 0.0, "n": 1}}, per_seed=[],
        run_dir=tmp_path / "x", split_hash="h"), 1.0)}
    text = write_demo_report(tmp_path, row, {}, cfg)
    assert "subject_norm=spectral" in text and "transductive" in text
    assert "transductive" not in write_demo_report(tmp_path, row, {}, DemoConfig())


def test_quick_demo_end_to_end(tmp_path, capsys):
    main(["--quick", "--out", str(tmp_path), "--threads", "1"])
    table = capsys.readouterr().out
    # bounded by work, not the clock: a second run from nothing prints the same numbers
    main(["--quick", "--out", str(tmp_path / "again"), "--threads", "1"])
    again = capsys.readouterr().out
    assert again.splitlines()[:-1] == table.splitlines()[:-1]  # the last line is the wall time
    rows = ("NeurIPT (AAMP-pretrained here, 3 steps)", "NeurIPT (from scratch)", "EEGNet")
    for row in rows:
        assert row in table
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results) == set(rows)
    for summary in results.values():
        assert {"balanced_accuracy", "auroc", "auc_pr"} <= set(summary)
    assert (tmp_path / "pretrain" / "pretrained" / "model.safetensors").is_file()
    report = (tmp_path / "REPORT.md").read_text()
    assert "| model | balanced_accuracy | auroc | auc_pr |" in report
    assert (tmp_path / "finetune" / "neuript_pretrained" / "REPORT.md").is_file()
