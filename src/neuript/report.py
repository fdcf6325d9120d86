"""The report of a fine-tuning run: REPORT.md with metric tables and figures (PNG).

Figures (matplotlib, Agg backend, written next to REPORT.md):

``curves.png``
    Training and validation loss, and validation balanced accuracy, per epoch and seed; the
    selected epoch of each seed is marked.
``confusion.png``
    Test confusion matrix at the selected epoch, counts summed over seeds, with row-normalised
    shares.
``lobes.png``
    Per-lobe occlusion drop drawn on the scalp (:func:`mne.viz.plot_topomap`), from the
    ``lobe_occlusion`` of the first seed's metrics (:mod:`neuript.train.attribution`): how much
    true-class log-probability the selected model loses on validation windows when a lobe's
    pooled features are replaced by their training mean. Each channel is coloured by the mean
    drop of the lobes it belongs to (a bipolar channel can sit in two lobes). It replaces the
    share of the head's weight norm, which is even across lobes whatever a model learned.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def read_curves(path: Path) -> list[dict[str, Any]]:
    """Read a ``curves.jsonl`` (one record per epoch); empty when absent."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(curves: dict[str, list[dict[str, Any]]], path: Path) -> Path | None:
    """Loss and validation balanced accuracy per epoch for each seed.

    Parameters
    ----------
    curves : dict of str to list of dict
        Seed label → epoch records (``epoch``, ``train_loss``, ``val_loss``,
        ``val_balanced_accuracy``, ``selected``).
    path : Path
        PNG to write.

    Returns
    -------
    path : Path | None
        None when there is nothing to draw.
    """
    if not any(curves.values()):
        return None
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (label, records) in enumerate(curves.items()):
        color = f"C{i % 10}"
        epochs = [r["epoch"] for r in records]
        ax_loss.plot(epochs, [r["train_loss"] for r in records], "-", color=color,
                     label=f"{label} train")
        ax_loss.plot(epochs, [r["val_loss"] for r in records], "--", color=color,
                     label=f"{label} val")
        ax_acc.plot(epochs, [r["val_balanced_accuracy"] for r in records], "-o", color=color,
                    ms=3, label=label)
        chosen = [r for r in records if r.get("selected")]
        if chosen:
            best = chosen[-1]
            ax_acc.plot([best["epoch"]], [best["val_balanced_accuracy"]], "*", color=color, ms=12)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="training / validation loss")
    ax_acc.set(xlabel="epoch", ylabel="balanced accuracy",
               title="validation balanced accuracy (* = selected)")
    from matplotlib.ticker import MaxNLocator

    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_loss.legend(fontsize=7)
    ax_acc.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(matrix: np.ndarray, class_names: list[str], path: Path) -> Path:
    """Draw a confusion matrix with counts and row-normalised shares."""
    plt = _pyplot()
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = 1.2 + 0.9 * len(class_names)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{matrix[i, j]}\n{shares[i, j]:.0%}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.6 else "black", fontsize=9)
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel="predicted", ylabel="true", title="test confusion (selected epoch)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_lobe_topomap(
    values_by_lobe: dict[str, float], ch_names: list[str], scheme: str, path: Path,
    title: str = "true-class log-prob drop when the lobe is occluded (nats)",
    positions: Any = None,
) -> Path:
    """Draw per-lobe values on the scalp: each channel gets the mean value of its lobes.

    The colour scale is symmetric around 0 (red: the model loses when the lobe is hidden).
    ``positions`` (C, 3) metres: the task's channel positions (None: the 10-05 table, which
    knows no custom electrode).
    """
    import mne

    from neuript.data.montage import channel_position, pooling_groups

    plt = _pyplot()
    if positions is None:
        positions = np.array([channel_position(n) for n in ch_names])
    positions = np.asarray(positions, np.float64).reshape(len(ch_names), 3)
    groups = pooling_groups(ch_names, positions, scheme)
    values = np.array([np.mean([values_by_lobe[g] for g, member
                                in zip(groups.names, groups.mask[:, c]) if member] or [0.0])
                       for c in range(len(ch_names))])
    info = mne.create_info(list(ch_names), sfreq=100.0, ch_types="eeg")
    montage = mne.channels.make_dig_montage(ch_pos=dict(zip(ch_names, positions)),
                                            coord_frame="head")
    info.set_montage(montage, on_missing="ignore")
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    top = max(float(np.abs(values).max()), 1e-9)
    image, _ = mne.viz.plot_topomap(values, info, axes=ax, show=False, cmap="RdBu_r",
                                    names=list(ch_names), sensors=True, contours=0,
                                    vlim=(-top, top))
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _read_predictions(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    labels = np.array([int(r["label"]) for r in rows])
    return labels, np.array([int(r["predicted"]) for r in rows])


def _fmt(stat: dict[str, float]) -> str:
    if not math.isfinite(stat.get("mean", math.nan)):
        return "–"
    return (f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f} "
            f"[{100 * stat['ci95_low']:.2f}, {100 * stat['ci95_high']:.2f}]")


def _overlap_lines(overlap: dict[str, Any] | None) -> list[str]:
    """The report's line on the subject-overlap guard (none for from-scratch runs)."""
    if overlap is None:
        return []
    if overlap["status"] == "overlap_allowed":
        return [f"- **pretraining overlap allowed (--allow-overlap)**: the init checkpoint's "
                f"corpus held {len(overlap['subjects'])} test subjects and "
                f"{len(overlap['recordings'])} test recordings of this task; test metrics are "
                "not on unseen data"]
    if overlap["status"] == "unknown":
        return ["- pretraining overlap: unknown (the init checkpoint records no corpus)"]
    return ["- pretraining overlap: none (no test subject or recording in the init's corpus)"]


def write_report(run_dir: str | Path) -> Path:
    """Write ``REPORT.md`` and its figures for a finished fine-tuning run.

    Parameters
    ----------
    run_dir : path-like
        A run directory written by :func:`neuript.train.finetune.run_finetune`.

    Returns
    -------
    path : Path
        The markdown file.
    """
    run_dir = Path(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    per_seed = metrics["per_seed"]
    class_names = list(json.loads((run_dir / "split_manifest.json").read_text())["class_names"])
    lines = [f"# Fine-tuning report: {metrics['model']} on {metrics['task']}", "",
             f"- init: `{metrics['init']}`; pooling: `{metrics.get('scheme')}`",
             f"- split manifest hash: `{metrics['split_hash']}`",
             f"- windows per split and class: `{json.dumps(metrics.get('counts', {}))}`",
             f"- seeds: {[row['seed'] for row in per_seed]}",
             *_overlap_lines(metrics.get("pretraining_overlap")), "",
             "## Test metrics at the selected epoch (%, mean ± std [95% CI] over seeds)", "",
             "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {_fmt(stat)} |" for key, stat in metrics["aggregate"].items()]
    keys = list(metrics["aggregate"])
    lines += ["", "## Per seed", "", "| seed | best epoch | " + " | ".join(keys) + " |",
              "|---" * (len(keys) + 2) + "|"]
    for row in per_seed:
        cells = [f"{100 * row['test'][k]:.2f}" if math.isfinite(row["test"][k]) else "–"
                 for k in keys]
        lines.append(f"| {row['seed']} | {row['best_epoch']} | " + " | ".join(cells) + " |")
    warnings = [f"- **seed {row['seed']}**: {w}" for row in per_seed
                for w in row.get("warnings", [])]
    if warnings:
        lines += ["", "## Warnings: runs that visibly failed to learn", "", *warnings]

    figures = []
    curves = {f"seed {row['seed']}": read_curves(run_dir / f"seed_{row['seed']}" / "curves.jsonl")
              for row in per_seed}
    if plot_curves(curves, run_dir / "curves.png") is not None:
        figures.append(("Training curves", "curves.png"))
    pairs = [_read_predictions(p) for row in per_seed
             if (p := run_dir / f"seed_{row['seed']}" / "test_predictions.csv").is_file()]
    if pairs:
        from sklearn.metrics import confusion_matrix

        labels = list(range(len(class_names)))  # row = true class, column = predicted class
        matrix = sum(confusion_matrix(t, p, labels=labels) for t, p in pairs)
        plot_confusion(matrix, class_names, run_dir / "confusion.png")
        figures.append(("Test confusion matrix (summed over seeds)", "confusion.png"))
    lobe_note = _lobe_section(run_dir, per_seed, figures)
    lines += [""]
    for title, name in figures:
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    lines += lobe_note
    path = run_dir / "REPORT.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def _lobe_section(run_dir: Path, per_seed: list[dict[str, Any]],
                  figures: list[tuple[str, str]]) -> list[str]:
    """Draw the lobe occlusion map of the first seed; return the markdown lines.

    The figures come from ``lobe_occlusion`` in the seed's metrics
    (:mod:`neuript.train.attribution`); runs without it (baselines) have no lobe section.
    """
    row = per_seed[0]
    occlusion = row.get("lobe_occlusion")
    model_dir = row.get("model_dir")
    if not occlusion or not model_dir or not (Path(model_dir) / "config.json").is_file():
        return []
    from neuript.model_folder import read_model_folder

    folder = read_model_folder(model_dir)
    info = folder.info
    lobes = occlusion["lobes"]
    try:
        plot_lobe_topomap({name: v["drop"] for name, v in lobes.items()},
                          list(info.ch_names), info.scheme,
                          run_dir / "lobes.png", positions=folder.extra.get("positions"))
        figures.append((f"Per-lobe occlusion drop (seed {row['seed']})", "lobes.png"))
    except Exception as err:  # a figure must never sink a finished run
        log.warning("lobe topomap not drawn: %s", err)
    used = [name for name, v in lobes.items() if v.get("used")]
    table = ["| lobe | true-class log-prob drop (nats) [95% CI over windows] | "
             "balanced-accuracy drop (points) | share | used |", "|---|---|---|---|---|"]
    table += [f"| {name} | {v['drop']:+.4f} [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}] | "
              f"{100 * v['bacc_drop']:+.1f} | "
              + (f"{100 * v['share']:.1f}%" if math.isfinite(v["share"]) else "–")
              + f" | {'yes' if v.get('used') else 'no'} |" for name, v in lobes.items()]
    threshold = occlusion.get("null_threshold", math.nan)
    verdict = (f"Lobes used (drop above the permutation threshold {threshold:+.4f} nats): "
               f"{', '.join(used)}." if used else
               f"**No lobe's drop exceeds the permutation threshold ({threshold:+.4f} nats): the "
               "model shows no reliable use of any lobe**, as a model at chance does.")
    return ["## Which lobes the model uses (occlusion)", "",
            f"Each lobe's pooled IILP features (every level) are replaced by their mean over the "
            f"training windows and the head is run again on the {occlusion['n_windows']} "
            f"{occlusion['split']} windows (seed {row['seed']}); the drop is the class-balanced "
            "mean loss of true-class log-probability. A lobe is *used* when its drop exceeds the "
            "95th percentile of the largest drop over lobes with the labels permuted (a "
            "family-wise 5% level); the interval over windows is descriptive only (windows of a "
            "recording are not independent). "
            "Share = positive drop / sum of positive drops; each channel on the map shows the "
            "mean drop of its lobes (neuript.train.attribution).", "", *table, "", verdict, ""]
