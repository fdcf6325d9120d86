"""Every ``--flag`` an error names exists in the command the user ran (issue 13, item 12).

The bad inputs are those of ``test_bad_inputs.ROWS`` (every command's table) plus rows whose
messages carry hints: unknown channels, a split column leaving a split empty, task options,
numeric exports without reader options. For each, the message the user sees (the one-line
``neuript: error:`` of a refused command, or ``inspect``'s problems) is searched for ``--flag``
words, and each must be an option of that command's parser (``neuript.cli.build_parser``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

from _byod_data import cropped_copy
from _cli import run_cli
from _finetune_data import eegmat_dir
from neuript.cli import build_parser
from test_bad_inputs import BASE_ROWS, ROWS, Row, manifest, model_dir  # noqa: F401 (fixture)

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_.-]*[a-z0-9]")


def options_of(command: str) -> set[str]:
    """Every option string of one subcommand (``--manifest``, ``--set`` …)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices[command]._option_string_actions)


def odd_channel(tmp: Path) -> Path:
    """The base rows plus a recording whose Cz is renamed to an unknown name (no position)."""
    odd = cropped_copy(eegmat_dir() / "Subject03_1.edf", tmp / "odd.edf", tmax_s=20.0,
                       rename={"EEG Cz": "Xyz9"})
    path = manifest(tmp, BASE_ROWS, "odd.csv")
    path.write_text(path.read_text() + f"{odd},rest,03\n")
    return path


def split_column_without_test(tmp: Path) -> Path:
    """Every subject forced into train or val by the split column: the test split is empty."""
    splits = {"00": "train", "01": "val", "02": "val"}
    lines = ["path,label,subject,split"] + [
        f"{eegmat_dir() / f},{label},{f[7:9]},{splits[f[7:9]]}" for f, label in BASE_ROWS]
    path = tmp / "split_column.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def export_without_sfreq(tmp: Path) -> Path:
    """The base rows plus a numeric export whose row gives no reader options."""
    np.save(tmp / "export.npy", np.zeros((3, 2560)))
    path = manifest(tmp, BASE_ROWS, "export.csv")
    path.write_text(path.read_text() + f"{tmp / 'export.npy'},rest,09\n")
    return path


def _both(name: str, build, says: tuple[str, ...], *extra: str) -> dict[str, Row]:
    """The same bad manifest through ``inspect`` (exit 1) and ``finetune`` (exit 2)."""
    return {
        f"{name} (inspect)": Row(lambda tmp, model: ["inspect", "--manifest", str(build(tmp)),
                                                     *extra], 1, says),
        f"{name} (finetune)": Row(lambda tmp, model: ["finetune", "--manifest", str(build(tmp)),
                                                      "--out", str(tmp / "run"), *extra], 2, says),
    }


HINT_ROWS: dict[str, Row] = {
    **_both("unknown channel", odd_channel,
            ("odd.csv line 8", "'Xyz9'", "--set task_options.on_unknown=drop")),
    **_both("split column leaves test empty", split_column_without_test,
            ("split column forces 3", "--split column")),
    **_both("export row without sfreq", export_without_sfreq,
            ("export.csv line 8", "reader option sfreq", "reader_options column")),
    **_both("unknown task option", lambda tmp: manifest(tmp, BASE_ROWS, "options.csv"),
            ("unknown task option(s) ['bogus']", "accepted: class_names"), "--set",
            "task_options.bogus=1"),
    **_both("dotted preprocess option", lambda tmp: manifest(tmp, BASE_ROWS, "dotted.csv"),
            ("task option preprocess", "h_freq_hz=40.0 must be below Nyquist"), "--set",
            "task_options.preprocess.h_freq_hz=40"),
}


def _seen_text(code: int, out: str, err: str) -> str:
    """What the user reads as the verdict: the error message, or inspect's problem list."""
    if code == 2:
        return err[err.index("neuript: error:"):]
    return out[out.index("problems ("):] if "problems (" in out else ""


@pytest.mark.parametrize("name", [*ROWS, *HINT_ROWS])
def test_flags_named_by_errors_exist_in_the_command(name: str, model_dir: Path,  # noqa: F811
                                                    tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    row = {**ROWS, **HINT_ROWS}[name]
    argv = row.argv(tmp_path, model_dir)
    out = run_cli(argv, capsys)
    code = out.code
    assert code == row.code, f"{name}: exit {code}:\n{(out.out + out.err)[-1500:]}"
    text = _seen_text(code, out.out, out.err)
    unknown = sorted(set(FLAG.findall(text)) - options_of(argv[0]))
    assert not unknown, f"{name}: `neuript {argv[0]}` has no {unknown}; it said:\n{text}"
    for fragment in row.says if name in HINT_ROWS else ():
        assert fragment in text, f"{name}: {fragment!r} not in:\n{text}"
    assert "Traceback" not in out.out + out.err
