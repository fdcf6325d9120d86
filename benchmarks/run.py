"""Run the benchmarks and regenerate benchmarks/RESULTS.md from every result file.

``python -m benchmarks.run [--only speed,pretrain_speed,stream,int8,corpus,accuracy,recipe,
ablation,transfer]
[--quick]
[--seeds 0 1 2 3 4] [--out benchmarks/results]`` (``make bench BENCH_ARGS="--quick"``).

Each part writes ``<name>.json`` + ``<name>.md`` into ``--out``; RESULTS.md is then rebuilt from
all JSON files there (parts not run this time keep their earlier numbers, each stamped with its
own command, date and machine). Durations on the 2-core CPU: ``--quick`` 17 minutes measured
with the cores shared (load ~5); the full run days at the current NeurIPT-small training speed
(an estimate is logged at the start; see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import (
    BenchOptions,
    fmt_duration,
    load_results,
    md_table,
    now_iso,
    provenance,
    rows_meta,
    stamp,
)

log = logging.getLogger("benchmarks")

PARTS: tuple[str, ...] = ("speed", "pretrain_speed", "stream", "int8", "corpus", "accuracy",
                         "recipe", "ablation", "transfer")
ORDER: tuple[str, ...] = ("speed", "pretrain_speed", "stream", "int8", "corpus", "checkpoint",
                         "mental_arithmetic", "recipe", "transfer", "ablations")
"""Section order of RESULTS.md (other JSON files follow, alphabetically)."""
ROOT = Path(__file__).resolve().parent


# --------------------------------------------------------------------------------------------
# RESULTS.md
# --------------------------------------------------------------------------------------------
def _corpus_markdown(r: dict[str, Any]) -> str:
    from benchmarks.bench_corpus import _markdown

    return _markdown(r).replace("\n\n", "\n\n" + provenance(r.get("meta")) + "\n\n", 1)


def renderers() -> dict[str, Callable[[Any], str]]:
    """JSON stem -> the function that renders it (the same one that wrote ``<stem>.md``)."""
    from benchmarks import (
        bench_ablation,
        bench_accuracy,
        bench_int8,
        bench_recipe,
        bench_speed,
        bench_stream,
    )
    from benchmarks.build_checkpoint import model_card

    return {"speed": bench_speed.markdown, "checkpoint": model_card, "corpus": _corpus_markdown,
            "pretrain_speed": bench_speed.markdown_pretrain_speed,
            "stream": bench_stream.markdown, "int8": bench_int8.markdown,
            "mental_arithmetic": bench_accuracy.markdown, "recipe": bench_recipe.markdown,
            "transfer": bench_accuracy.markdown_transfer, "ablations": bench_ablation.markdown}


def _meta(body: Any) -> dict[str, Any] | None:
    if isinstance(body, list):
        return rows_meta(body)
    return body.get("meta") if isinstance(body, dict) else None


def _demote(markdown: str) -> str:
    """Push every heading one level down (a part's ``#`` becomes ``##`` in RESULTS.md)."""
    return "\n".join("#" + line if line.startswith("#") else line
                     for line in markdown.splitlines())


def render_results(results: dict[str, Any]) -> str:
    """RESULTS.md from result bodies by stem (as :func:`benchmarks.common.load_results` reads)."""
    known = renderers()
    stems = [s for s in ORDER if s in results] + sorted(set(results) - set(ORDER))
    index = []
    for stem in stems:
        meta = _meta(results[stem]) or {}
        index.append([f"`{stem}.json`", meta.get("date", "not recorded"),
                      f"`{meta['command']}`" if meta.get("command") else "not recorded",
                      fmt_duration(meta.get("wall_s"))])
    parts = ["# Benchmark results", "",
             f"Generated {now_iso()} by `python -m benchmarks.run` from the JSON files in "
             "`benchmarks/results/`; nothing here is typed by hand (edit the benchmarks, not "
             "this file). Each section states the command, date and machine that produced it.",
             "", md_table(["result", "date", "command", "wall time"], index), ""]
    absent = [stem for stem in ORDER if stem not in results]
    if absent:
        parts += ["Not run yet (no JSON file): " + ", ".join(f"`{s}`" for s in absent)
                  + ". `python -m benchmarks.run --only <part>` produces each.", ""]
    for stem in stems:
        body = results[stem]
        try:
            text = known[stem](body) if stem in known else _generic(stem, body)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            text = f"# {stem}\n\n_Could not render {stem}.json: {type(err).__name__}: {err}_\n"
        parts += [_demote(text).rstrip(), ""]
    return "\n".join(parts)


def _generic(stem: str, body: Any) -> str:
    text = json.dumps(body, indent=1)
    if len(text) > 4000:
        text = text[:4000] + "\n…"
    return f"# {stem}\n\n{provenance(_meta(body))}\n\n```json\n{text}\n```\n"


OWN_PARTS: tuple[str, ...] = ("speed", "pretrain_speed", "stream", "int8", "mental_arithmetic",
                              "recipe", "transfer", "ablations")
"""Stems whose ``<stem>.md`` this harness renders (corpus.md belongs to bench_corpus)."""


README_PARTS: tuple[str, ...] = ("mental_arithmetic", "recipe", "checkpoint", "speed",
                                  "pretrain_speed", "stream", "int8", "corpus")
"""Sections copied into the README's results block (the rest stay in RESULTS.md)."""
README_MARKERS: tuple[str, str] = ("<!-- results:start -->", "<!-- results:end -->")


def readme_block(results: dict[str, Any]) -> str:
    """The README's results block: the headline sections of RESULTS.md, two levels down."""
    known = renderers()
    extra = [name for stem, name in (("ablations", "the ablations"),
                                     ("transfer", "the ADHD / Muse P300 transfer rows"))
             if stem in results]
    missing = [stem for stem in ("ablations", "transfer") if stem not in results]
    parts = ["Copied by `python -m benchmarks.run` from "
             "[benchmarks/RESULTS.md](benchmarks/RESULTS.md)"
             + (f", which also holds {' and '.join(extra)}" if extra else "")
             + "; each section names its command and date."
             + (f" Not run yet: {', '.join(missing)} (`python -m benchmarks.run --only "
                f"{','.join(m.rstrip('s') if m == 'ablations' else m for m in missing)}`)."
                if missing else ""),
             ""]
    for stem in README_PARTS:
        if stem in results:
            parts += [_demote(_demote(known[stem](results[stem]))).rstrip(), ""]
    return "\n".join(parts)


def update_readme(readme: Path, results: dict[str, Any]) -> bool:
    """Replace the text between the README's results markers; False if it has none."""
    if not readme.is_file():
        return False
    text = readme.read_text()
    start, end = README_MARKERS
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(f"{head}{start}\n{readme_block(results)}\n{end}{tail}")
    tmp.replace(readme)
    return True


def write_results_md(out_dir: Path, path: Path, readme: Path | None = None) -> Path:
    """Regenerate ``path`` (RESULTS.md), each own part's ``.md`` and the README's results block."""
    results = load_results(out_dir)
    known = renderers()
    for stem in OWN_PARTS:
        if stem in results:
            (Path(out_dir) / f"{stem}.md").write_text(known[stem](results[stem]))
    path.write_text(render_results(results))
    log.info("wrote %s", path)
    if readme is not None and update_readme(readme, results):
        log.info("updated the results section of %s", readme)
    return path


# --------------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command-line flags (None = the default of the chosen mode)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(PARTS),
                   help=f"comma-separated parts out of {','.join(PARTS)} (default: all)")
    p.add_argument("--quick", action="store_true", help="small budgets: about 10 min in all")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="fine-tuning seeds")
    p.add_argument("--out", type=Path, default=ROOT / "results", help="result folder")
    p.add_argument("--work", type=Path, default=ROOT / "work", help="corpus and run folders")
    p.add_argument("--results-md", type=Path, default=ROOT / "RESULTS.md")
    p.add_argument("--readme", type=Path, default=None,
                   help="README whose results block is refreshed (between its markers); "
                        "default: the repository's README when --out is the default folder")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    p.add_argument("--preset", default=None, help="NeurIPT preset for accuracy rows")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="fine-tuning step cap per seed")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--subjects-per-split", type=int, default=None)
    p.add_argument("--pretrain-steps", type=int, default=None, help="pretraining budget (steps)")
    p.add_argument("--pretrain-batch", type=int, default=None)
    p.add_argument("--secondary-seeds", type=int, default=None,
                   help="seeds of each ablation and transfer row (the first n of --seeds)")
    p.add_argument("--secondary-epochs", type=int, default=None,
                   help="epochs of each ablation and transfer row (at most --epochs)")
    p.add_argument("--cv-neuript", action="store_true",
                   help="also run NeurIPT under subject-wise CV (6 x the fine-tuning time)")
    p.add_argument("--cv-models", default=None,
                   help="comma-separated models run under subject-wise CV "
                        "(default: bandpower_lr,eegnet,shallowconvnet)")
    p.add_argument("--recipe-variants", default=None,
                   help="comma-separated variants of the recipe part (default: every variant; "
                        "see benchmarks/bench_recipe.py)")
    p.add_argument("--recipe-folds", default=None,
                   help="comma-separated fold numbers of the recipe part, or 'paper' for the "
                        "paper split (default: every fold; a screen on a subset, completed "
                        "later, reuses the cached cells)")
    p.add_argument("--render-only", action="store_true", help="only rebuild RESULTS.md")
    return p.parse_args(argv)


def options_from_args(args: argparse.Namespace, argv: Sequence[str]) -> BenchOptions:
    """BenchOptions: the mode's defaults, then every flag given explicitly."""
    opts = BenchOptions(out_dir=args.out, work_dir=args.work,
                        command="python -m benchmarks.run " + shlex.join(argv))
    if args.quick:
        opts = opts.quick_version()
    given = {"seeds": tuple(args.seeds) if args.seeds else None, "threads": args.threads,
             "preset": args.preset, "epochs": args.epochs, "max_steps": args.max_steps,
             "batch_size": args.batch_size, "subjects_per_split": args.subjects_per_split,
             "pretrain_steps": args.pretrain_steps, "pretrain_batch": args.pretrain_batch,
             "secondary_seeds": args.secondary_seeds, "secondary_epochs": args.secondary_epochs}
    opts = replace(opts, **{k: v for k, v in given.items() if v is not None})
    if args.cv_models is not None:
        opts = replace(opts, cv_models=tuple(m for m in args.cv_models.split(",") if m))
    if args.recipe_variants:
        variants = tuple(v for v in args.recipe_variants.split(",") if v)
        opts = replace(opts, extra={**opts.extra, "recipe_variants": variants})
    if args.recipe_folds:
        folds = tuple(-1 if k == "paper" else int(k) for k in args.recipe_folds.split(",") if k)
        opts = replace(opts, extra={**opts.extra, "recipe_folds": folds})
    if args.cv_neuript and "neuript" not in opts.cv_models:
        opts = replace(opts, cv_models=(*opts.cv_models, "neuript"))
    return opts


def run_corpus(opts: BenchOptions) -> dict[str, Any]:
    """bench_corpus, with the command, date and machine added to corpus.json."""
    from benchmarks import bench_corpus

    t0 = time.perf_counter()
    result = bench_corpus.run(opts.out_dir, workers=2)
    result["meta"] = stamp(opts.command, time.perf_counter() - t0)
    (opts.out_dir / "corpus.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen parts, then rebuild RESULTS.md; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        stream=sys.stdout)
    opts = options_from_args(args, argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        log.error("--only: unknown part(s) %s; known: %s", unknown, ", ".join(PARTS))
        return 2
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    if not args.render_only:
        run_parts(opts, parts)
    readme = args.readme
    if readme is None and Path(opts.out_dir).resolve() == (ROOT / "results").resolve():
        readme = ROOT.parent / "README.md"  # a custom --out must never rewrite the real README
    write_results_md(opts.out_dir, args.results_md, readme)
    return 0


TRAIN_WINDOWS: dict[str, int] = {"mental_arithmetic": 1343, "adhd": 2971, "muse_p300": 7536}
"""Training windows of each task's default split (from the task modules' count tables)."""


def planned_windows(opts: BenchOptions) -> dict[str, int]:
    """NeurIPT training windows each slow part will push through (pretraining included)."""

    def per_run(task: str, seeds: int, epochs: int) -> int:
        n = TRAIN_WINDOWS[task] if opts.subjects_per_split is None else 48
        per_epoch = n if opts.max_steps is None else min(n, opts.max_steps * opts.batch_size)
        return seeds * epochs * per_epoch

    pretrain = opts.pretrain_steps * opts.pretrain_batch
    seeds = len(opts.seeds)
    cv = opts.cv_folds if "neuript" in opts.cv_models else 0
    side = opts.secondary()
    return {
        "accuracy": pretrain + (2 + cv) * per_run("mental_arithmetic", seeds, opts.epochs),
        "ablation": pretrain + 8 * per_run("mental_arithmetic", len(side.seeds), side.epochs),
        "transfer": 2 * sum(per_run(t, len(side.seeds), side.epochs)
                            for t in ("adhd", "muse_p300")),
    }


def log_estimate(opts: BenchOptions, parts: Sequence[str]) -> None:
    """Log an expected duration per slow part from the last measured small-preset speed."""
    speed_file = opts.out_dir / "speed.json"
    if not speed_file.is_file():
        log.info("no speed.json yet: run --only speed first for a duration estimate")
        return
    presets = json.loads(speed_file.read_text()).get("presets", [])
    small = next((p for p in presets if p["preset"] == "small"), None)
    if small is None:
        return
    wps = small["train_windows_per_s"]["320"]
    for part, windows in planned_windows(opts).items():
        if part in parts:
            log.info("expected %s: ~%s (%d NeurIPT training windows at the measured %.2f "
                     "windows/s, plus evaluation)", part, fmt_duration(windows / wps), windows, wps)


def run_parts(opts: BenchOptions, parts: Sequence[str]) -> dict[str, float]:
    """Run ``parts`` in the canonical order; log and return each one's wall time."""
    import torch

    from benchmarks import (
        bench_ablation,
        bench_accuracy,
        bench_int8,
        bench_recipe,
        bench_speed,
        bench_stream,
    )

    torch.set_num_threads(opts.train_threads)
    shared: dict[str, Any] = {}

    def pretrained() -> dict[str, Any]:
        if "aamp" not in shared:
            shared["aamp"] = bench_accuracy.ensure_pretrained(opts)
        return shared["aamp"]

    jobs: dict[str, Callable[[], Any]] = {
        "speed": lambda: bench_speed.run(opts), "corpus": lambda: run_corpus(opts),
        "pretrain_speed": lambda: bench_speed.run_pretrain_speed(opts),
        "stream": lambda: bench_stream.run(opts), "int8": lambda: bench_int8.run(opts),
        "accuracy": lambda: bench_accuracy.run(opts, pretrained()),
        "recipe": lambda: bench_recipe.run(opts),
        "ablation": lambda: bench_ablation.run(opts, pretrained()),
        "transfer": lambda: bench_accuracy.run_transfer(opts, pretrained()),
    }
    log_estimate(opts, parts)
    took = {}
    for part in (p for p in PARTS if p in parts):
        t0 = time.perf_counter()
        log.info("=== %s (%s) ===", part, "quick" if opts.quick else "full")
        jobs[part]()
        took[part] = time.perf_counter() - t0
        log.info("=== %s done in %s ===", part, fmt_duration(took[part]))
    log.info("total: %s (%s)", fmt_duration(sum(took.values())),
             ", ".join(f"{k} {fmt_duration(v)}" for k, v in took.items()))
    return took


if __name__ == "__main__":
    sys.exit(main())
