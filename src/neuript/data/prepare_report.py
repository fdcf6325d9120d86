"""What ``neuript prepare`` tells its user: the per-input table, warnings and the failure check.

Pure functions of a :class:`~neuript.data.store.CorpusSummary` (``summary.inputs``, one
:class:`~neuript.data.store.InputReport` per input argument, and ``inputs_total``):
:func:`prepare_table` renders it, :func:`rejection_warnings` names every input that lost more
than half its windows with the option that keeps them, and :func:`check_usable` raises one line
when nothing usable came out (no file read, or no window kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from neuript.config import PreprocessConfig
from neuript.data.io import READERS
from neuript.data.store import (
    SKIP_REASONS,
    TABLE_REJECT_ORDER,
    CorpusSummary,
    InputReport,
    order_keys,
)
from neuript.errors import NeuriptError


def _counts(counts: Mapping[str, int]) -> str:
    """``"amplitude 4044, clipped 53"``: the non-zero counts, largest first."""
    ranked = sorted(((n, k) for k, n in counts.items() if n), key=lambda t: -t[0])
    return ", ".join(f"{k} {n}" for n, k in ranked) or "none"


def rejection_hint(rejected: Mapping[str, int], cfg: PreprocessConfig | None = None) -> str:
    """The option that keeps more windows, for the rejection reason with the most windows."""
    tunable = {k: rejected.get(k, 0) for k in ("amplitude", "flat")}
    top = max(tunable, key=lambda k: tunable[k])
    if tunable[top] and top == "amplitude":
        now = "" if cfg is None else f" (now {cfg.reject_abs_uv:g} µV)"
        return f"pass --reject_abs_uv None or a higher threshold{now}"
    if tunable[top]:
        now = "" if cfg is None else f" (now {cfg.flat_std_uv:g} µV)"
        return f"pass --flat_std_uv None or a lower threshold{now}"
    return ("clipped and NaN windows are always rejected; check a recording with "
            "`neuript inspect FILE`")


def rejection_warnings(summary: CorpusSummary, cfg: PreprocessConfig | None = None) -> list[str]:
    """One line per input that lost more than half of its windows to rejection."""
    lines = []
    for rep in summary.inputs:
        total = rep.windows + rep.n_rejected
        if total and rep.n_rejected > total / 2:
            lines.append(
                f"{rep.input}: {rep.n_rejected} of {total} windows "
                f"({100 * rep.n_rejected / total:.0f}%) were rejected "
                f"({_counts(rep.rejected)}); {rejection_hint(rep.rejected, cfg)}")
    return lines


def _describe_files(files: Sequence[str], max_names: int = 3) -> str:
    """``"a.txt, b.foo"`` for a few files, else their suffixes: ``"suffixes .foo, .txt"``."""
    if len(files) <= max_names:
        return ", ".join(Path(f).name for f in files)
    found = sorted({Path(f).suffix.lower() or "(no suffix)" for f in files})
    return f"suffixes {', '.join(found)}"


def _skip_problem(rep: InputReport, out_dir: str) -> str:
    """Why none of ``rep``'s files could be used, naming them, with the option that helps."""
    n = rep.files_found
    where = f"see {Path(out_dir) / 'skipped.json'}"
    if len(rep.skipped) != 1:
        counts = "; ".join(f"{k} {len(v)}: {_describe_files(v)}" for k, v in rep.skipped.items())
        return f"none of the {_plural(n, 'file')} could be used ({counts}); {where}"
    ((reason, files),) = rep.skipped.items()
    every = "the one file is" if n == 1 else f"all {n} files are"
    named = _describe_files(files)
    if reason == "unsupported format":
        return (f"{every} of an unsupported format ({named}); "
                f"prepare reads {', '.join(READERS)}")
    if reason == "too short":
        return (f"{every} too short for one window ({named}); lower --min_duration_s, "
                f"--trim_edges_s or --window_s ({where})")
    if reason == "no usable channels" and rep.flat_left_out:
        return (f"{every} without usable channels ({named}) once the electrodes flat for the "
                f"whole recording ({', '.join(map(repr, rep.flat_left_out))}) were left out, "
                f"and the montage needs them; --montage auto keeps the other channels "
                f"(monopolar), --flat-channels reject --flat_std_uv None keeps the flat ones "
                f"in ({where})")
    if reason == "no usable channels":
        return (f"{every} without usable channels ({named}); electrodes without a 10-05 name "
                f"need --positions FILE; or try --on-unknown drop or --montage as_is ({where})")
    if reason == "annotations only":
        return (f"{every} annotations without signals ({named}), such as a hypnogram; pass "
                f"the recordings they annotate ({where})")
    return f"{every} {reason} ({named}; {where}; `neuript inspect FILE` checks one)"


def check_usable(summary: CorpusSummary, cfg: PreprocessConfig | None = None) -> None:
    """Raise :class:`NeuriptError` if this run's inputs gave no file or no window.

    Nothing is removed from the corpus folder. A summary without per-input reports passes.
    """
    total = summary.inputs_total
    if total is None:
        return
    labels = [rep.input for rep in summary.inputs]
    names = ", ".join(labels[:3]) + (f" and {len(labels) - 3} more" if len(labels) > 3 else "")
    if total.files_found == 0:
        raise NeuriptError(f"{names}: no files found; pass recordings or folders holding "
                           f"{', '.join(READERS)} files")
    if total.files_read == 0:
        raise NeuriptError(f"{names}: {_skip_problem(total, summary.out_dir)}")
    if total.windows == 0:
        raise NeuriptError(
            f"{names}: every window was rejected ({_counts(total.rejected)}) in the "
            f"{_plural(total.files_read, 'file')} read; {rejection_hint(total.rejected, cfg)}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _cell(value: float | int) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _short(path: str, root: str) -> str:
    """``path`` relative to the input folder ``root`` where it lies inside it (its name when
    the input is the file itself)."""
    try:
        rel = str(Path(path).relative_to(Path(root).expanduser().resolve()))
    except ValueError:
        return path
    return Path(path).name if rel == "." else rel


def prepare_table(summary: CorpusSummary, max_names: int = 10) -> str:
    """A markdown table of what each input gave, then the skipped files by reason.

    Parameters
    ----------
    summary : CorpusSummary
        From :func:`prepare_corpus`.
    max_names : int
        Skipped files named per input and reason (the rest are counted).

    Returns
    -------
    text : str
        Columns: input, files found, read, skipped (per reason that occurs), windows kept,
        rejected (per reason that occurs), hours; a total row for several inputs.
    """
    rows = list(summary.inputs)
    if len(rows) > 1 and summary.inputs_total is not None:
        rows.append(summary.inputs_total)
    skip_keys = order_keys({k for r in rows for k in r.skipped}, SKIP_REASONS)
    reject_keys = order_keys({k for r in rows for k, n in r.rejected.items() if n},
                           TABLE_REJECT_ORDER)
    header = ["input", "files found", "read",
              *([f"skipped: {k}" for k in skip_keys] or ["skipped"]), "windows kept",
              *([f"rejected: {k}" for k in reject_keys] or ["rejected"]), "hours"]
    lines = [f"prepare: {summary.out_dir}", "", "| " + " | ".join(header) + " |",
             "|---" + "|---:" * (len(header) - 1) + "|"]
    for r in rows:
        skips = [len(r.skipped.get(k, [])) for k in skip_keys] or [0]
        rejects = [r.rejected.get(k, 0) for k in reject_keys] or [0]
        cells = [r.input, r.files_found, r.files_read, *skips, r.windows, *rejects, r.hours]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    notes = []
    for r in summary.inputs:
        for reason, files in r.skipped.items():
            shown = ", ".join(_short(f, r.input) for f in files[:max_names])
            more = f" … and {len(files) - max_names} more" if len(files) > max_names else ""
            notes.append(f"- {r.input}: {reason} ({len(files)}): {shown}{more}")
        if r.flat_left_out:
            names = ", ".join(f"{n!r} ({_plural(k, 'file')})"
                              for n, k in list(r.flat_left_out.items())[:max_names])
            notes.append(f"- {r.input}: electrodes flat for a whole recording, left out of it: "
                         f"{names} (--flat-channels reject keeps them)")
        if r.companions:
            notes.append(f"- {r.input}: {_plural(r.companions, 'sidecar/companion file')} "
                         "not counted (README, .json, .tsv, .vmrk, .fdt, …)")
    if notes:
        lines += ["", "left out (files' reasons in skipped.json, all names in summary.json):",
                  *notes]
    return "\n".join(lines)
