"""The command line: help, config resolution, clean errors, and end-to-end runs on real data."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from _train_corpus import corpus_dir
from neuript.cli import build_parser, main, parse_value, resolve_pretrain
from neuript.config import from_dict
from neuript.paths import REPO_ROOT, data_root

SUBCOMMANDS = ("prepare", "pretrain", "finetune", "evaluate", "predict", "embed", "tasks", "info",
               "inspect", "export", "probe", "stream")


def _run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "neuript", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert re.search(rf"^\s+{name}\s", text, re.M), name


def test_config_file_then_flags_then_set(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(yaml.safe_dump({"preset": "small", "train": {"batch_size": 16},
                                        "model": {"dropout": 0.3}}))
    argv = ["pretrain", "--config", str(cfg_file), "--corpus", "C", "--max-steps", "7",
            "--model.d_model", "32", "--set", "model.moe.expert_hidden=8",
            "--set", "mask.ratios=[0.25]", "--masking", "random", "--optim.betas", "0.8,0.9"]
    cfg = resolve_pretrain(build_parser().parse_args(argv))
    assert cfg.corpus == "C" and cfg.train.max_steps == 7 and cfg.train.batch_size == 16
    assert cfg.model.d_model == 32 and cfg.model.dropout == 0.3  # YAML kept, flag applied
    assert cfg.model.moe.expert_hidden == 8 and cfg.model.moe.shared_hidden == 64  # small preset
    assert cfg.mask.ratios == (0.25,) and cfg.mask.strategy == "random"
    assert cfg.optim.betas == (0.8, 0.9)
    assert parse_value("null") is None and parse_value("1e-3") in ("1e-3", 1e-3)


@pytest.mark.parametrize("text", ["None", "none", "NONE", "null", "Null", "NULL", "~", " None "])
def test_none_words_parse_to_none(text):
    """Issue 13: ``--reject_abs_uv None`` gave the string "None"."""
    assert parse_value(text) is None


def test_none_in_flags_and_set(tmp_path):
    assert parse_value("Nonesuch") == "Nonesuch" and parse_value("1,2") == [1, 2]
    argv = ["pretrain", "--corpus", "C", "--train.max_minutes", "None",
            "--set", "train.max_steps=NULL"]
    cfg = resolve_pretrain(build_parser().parse_args(argv))
    assert cfg.train.max_minutes is None and cfg.train.max_steps is None


class _FakeSummary:
    out_dir, inputs, inputs_total = "c", [], None

    def to_dict(self) -> dict:
        return {"windows": 0}


def _prepare_config(argv, monkeypatch):
    """The PreprocessConfig that ``neuript prepare ARGV`` hands to prepare_corpus."""
    import neuript.data.store as store

    seen = {}

    def fake_prepare_corpus(inputs, out, cfg, **kwargs):
        seen["cfg"] = cfg
        return _FakeSummary()

    monkeypatch.setattr(store, "prepare_corpus", fake_prepare_corpus)
    main(["prepare", "rec.edf", *argv])
    return seen["cfg"]


def test_prepare_defaults_to_auto_montage_and_reads_none(tmp_path, monkeypatch, capsys):
    """Issue 13: ``prepare`` used montage tcp although README and --help say auto."""
    from neuript.config import PreprocessConfig

    out = str(tmp_path / "c")
    cfg = _prepare_config(["--out", out, "--reject_abs_uv", "None", "--set", "flat_std_uv=none"],
                          monkeypatch)
    assert cfg.montage == "auto" and cfg.reject_abs_uv is None and cfg.flat_std_uv is None
    written = json.loads((tmp_path / "c" / "neuript_prepare.json").read_text())
    assert written["preprocess"]["montage"] == "auto"
    assert written["preprocess"]["reject_abs_uv"] is None
    assert _prepare_config(["--out", out, "--montage", "tcp"], monkeypatch).montage == "tcp"
    cfg_file = tmp_path / "p.yaml"
    cfg_file.write_text("montage: monopolar\n")
    cfg = _prepare_config(["--out", out, "--config", str(cfg_file)], monkeypatch)
    assert cfg.montage == "monopolar"
    assert PreprocessConfig().montage == "tcp"  # the task builders' default is unchanged
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    assert "default here: auto" in " ".join(capsys.readouterr().out.split())


def _exit_code(argv, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_user_errors_are_one_clean_line(tmp_path, capsys):
    code, err = _exit_code(["pretrain", "--corpus", str(tmp_path), "--set", "model.width=3"],
                           capsys)
    assert code == 2 and err.strip().splitlines()[-1].startswith("neuript: error: unknown setting")
    code, err = _exit_code(["pretrain", "--corpus", str(tmp_path / "none"), "--out",
                            str(tmp_path / "r"), "--max-steps", "2", "--device", "cpu"], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("neuript: error: ") and "manifest.csv" in last
    assert "Traceback" not in err
    with pytest.raises(Exception, match="manifest.csv"):  # --debug re-raises for the traceback
        main(["pretrain", "--corpus", str(tmp_path / "none"), "--out", str(tmp_path / "r"),
              "--device", "cpu", "--debug"])


def test_info_paper_activated_parameters(capsys):
    main(["info", "--preset", "paper"])
    out = capsys.readouterr().out
    activated = int(re.search(r"activated parameters:\s+([\d,]+)", out)[1].replace(",", ""))
    assert activated == pytest.approx(73.5e6, rel=0.005)  # the paper's 73.5 M


def test_tasks_lists_the_registry(capsys):
    from neuript.data.tasks import TASKS

    main(["tasks"])
    text = capsys.readouterr().out
    assert all(name in text for name in TASKS)


def test_prepare_writes_corpus_and_config(tmp_path, capsys):
    src = data_root() / "eegmat" / "Subject02_2.edf"
    if not src.is_file():
        pytest.skip(f"real EEG file missing: {src}")
    out = tmp_path / "corpus"
    main(["prepare", "eegmat/Subject02_2.edf", "--out", str(out), "--window_s", "2.0",
          "--data-root", str(data_root())])
    written = json.loads((out / "neuript_prepare.json").read_text())
    assert written["preprocess"]["window_s"] == 2.0
    assert '"windows"' in capsys.readouterr().out  # the summary is printed
    from neuript.data.store import WindowStore

    store = WindowStore(out)
    assert len(store) > 20 and store.config.window_s == 2.0


def test_pretrain_end_to_end(tmp_path_factory, tmp_path):
    corpus = corpus_dir(tmp_path_factory)
    run = tmp_path / "R"
    out = _run_cli("pretrain", "--corpus", str(corpus), "--preset", "tiny", "--max-steps", "20",
                   "--out", str(run), "--batch-size", "2", "--device", "cpu",
                   "--train.log_every", "5", "--set", "val_batches=2", "--train.threads", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (run / "pretrained" / "model.safetensors").is_file()
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["max_steps"] == 20 and cfg["model"]["d_model"] == 32
    lines = [json.loads(s) for s in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in lines if "loss" in r]
    assert [r["step"] for r in lines if "loss" in r] == [5, 10, 15, 20]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert math.isfinite(lines[-1]["val_loss"])


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_config_presets_load(path: Path):
    from neuript.config import PreprocessConfig
    from neuript.train.finetune import FinetuneRunConfig
    from neuript.train.pretrain import PretrainRunConfig

    kinds = {"pretrain": PretrainRunConfig, "finetune": FinetuneRunConfig,
             "prepare": PreprocessConfig}
    cls = kinds[path.name.split("_")[0]]
    cfg = from_dict(cls, yaml.safe_load(path.read_text()))
    assert isinstance(cfg, cls)


def test_dotted_flags_show_field_docs_and_choices(capsys):
    from neuript.cli import build_parser
    from neuript.config import MoEConfig, field_docs

    assert field_docs(MoEConfig)["noise_std"].startswith("Std of the Gaussian noise")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Weigh windows by inverse class frequency" in text
    assert "(balanced | none)" in text


def _eegmat_copy(folder: Path) -> Path:
    src = data_root() / "eegmat" / "Subject00_1.edf"
    if not src.is_file():
        pytest.skip(f"real EEG file missing: {src}")
    folder.mkdir(exist_ok=True)
    (folder / "Subject00_1.edf").symlink_to(src)
    return folder


def _unsupported(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "a.txt").write_text("not EEG\n")
    (folder / "b.foo").write_bytes(b"\x00\x01")
    return folder


def test_prepare_fails_on_a_folder_of_unsupported_files(tmp_path, capsys):
    """Issue 13: exit 0 and one INFO line although no file was usable."""
    folder = _unsupported(tmp_path / "odd")
    code, err = _exit_code(["prepare", str(folder), "--out", str(tmp_path / "c")], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith(f"neuript: error: {folder}: ")
    assert "a.txt, b.foo" in last and "unsupported format" in last and "Traceback" not in err
    assert not (tmp_path / "c" / "neuript_prepare.json").exists()  # only a passed run writes it


def test_prepare_table_lists_unsupported_files_beside_a_real_one(tmp_path, capsys):
    folder = _unsupported(_eegmat_copy(tmp_path / "mixed"))
    main(["prepare", str(folder), "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert "| input | files found | read | skipped: unsupported format | windows kept |" in out
    row = next(line for line in out.splitlines() if line.startswith(f"| {folder} |"))
    assert row.split(" | ")[1:4] == ["3", "1", "2"]
    assert f"- {folder}: unsupported format (2): a.txt, b.foo" in out


def test_prepare_fails_when_every_window_is_rejected(tmp_path, capsys, caplog):
    folder = _eegmat_copy(tmp_path / "one")
    out = tmp_path / "c"
    out.mkdir()
    (out / "keep.txt").write_text("earlier work")
    code, err = _exit_code(["prepare", str(folder), "--out", str(out), "--reject_abs_uv",
                            "0.001", "--window_s", "8"], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and "every window was rejected (amplitude " in last
    assert "--reject_abs_uv None" in last
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(str(folder) in w and "--reject_abs_uv" in w for w in warnings)
    assert (out / "keep.txt").read_text() == "earlier work" and (out / "summary.json").is_file()
