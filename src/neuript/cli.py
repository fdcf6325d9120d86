"""The ``neuript`` command line: one function per subcommand, parsing and dispatch only.

Each subcommand builds its config dataclass with the flag engine of :mod:`neuript.cli_flags`
(defaults < ``--config file.yaml`` < convenience flags < dotted flags < ``--set key=value``),
prints it, and hands it to the module that does the work; the settings are written beside the
output only once the run has passed its checks. User errors
(:class:`neuript.errors.NeuriptError`) end with one line ``neuript: error: <message>`` and exit
code 2; ``--debug`` shows the traceback. ``prepare`` defaults to ``montage: auto``
(:data:`PREPARE_DEFAULTS`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

from neuript.cli_flags import (
    build_config,
    common_flags,
    deep_merge,
    parse_value,
    save_config,
    show_config,
)
from neuript.config import Engine, SubjectNorm
from neuript.errors import NeuriptError

log = logging.getLogger("neuript")


# --------------------------------------------------------------------------------------------
# subcommands
# --------------------------------------------------------------------------------------------
PREPARE_DEFAULTS: Mapping[str, Any] = types.MappingProxyType({"montage": "auto"})
"""``neuript prepare``'s own defaults over :class:`PreprocessConfig`'s: ``montage: auto`` (TCP
where a recording has every TCP electrode, else its own channels), as a mixed corpus needs; the
task builders keep the dataclass default, ``tcp``."""


def cmd_prepare(args: argparse.Namespace) -> None:
    """Build a window corpus from recordings (``data.store.prepare_corpus``).

    Prints the summary as JSON, then a table per input (files found, read and skipped by reason;
    windows kept and rejected by reason; hours), and fails (exit 2) when no file was usable or no
    window was kept. The corpus folder is left as it is. With ``--merge`` the inputs are the
    folders of ``--shard i/n`` runs, assembled into ``--out`` (``data.merge.merge_corpus``).
    """
    from neuript.config import PreprocessConfig
    from neuript.data.prepare_report import check_usable, prepare_table
    from neuript.data.store import prepare_corpus
    from neuript.paths import data_root

    if args.merge:
        from neuript.data.merge import merge_corpus

        body = show_config({"merge": args.inputs, "out": args.out})
        summary = merge_corpus(args.inputs, args.out)
        print(json.dumps(summary.to_dict(), indent=2, default=str))
        print(prepare_table(summary), flush=True)
        save_config(body, Path(args.out) / "neuript_prepare.merge.json")
        return
    cfg = build_config(PreprocessConfig, args, {}, base=lambda data: {**PREPARE_DEFAULTS, **data})
    root = data_root(args.data_root)
    inputs = [p if Path(p).exists() or Path(p).is_absolute() else str(root / p)
              for p in args.inputs]
    options = reader_options(args.reader_option)
    settings = {"inputs": inputs, "out": args.out, "workers": args.workers, "shard": args.shard,
                "on_unknown": args.on_unknown, "reader_options": options,
                "positions": args.positions, "recording_norm": args.recording_norm,
                "flat_channels": args.flat_channels, "preprocess": dataclasses.asdict(cfg)}
    body = show_config(settings)
    summary = prepare_corpus(inputs, args.out, cfg, workers=args.workers, shard=args.shard,
                             on_unknown=args.on_unknown, reader_options=options,
                             positions=args.positions, recording_norm=args.recording_norm,
                             flat_channels=args.flat_channels)
    print(json.dumps(summary.to_dict(), indent=2, default=str))
    print(prepare_table(summary), flush=True)
    check_usable(summary, cfg)
    shard = f".shard-{args.shard.replace('/', '-of-')}" if args.shard else ""
    save_config(body, Path(args.out) / f"neuript_prepare{shard}.json")  # only once it passed


PRETRAIN_FLAGS = {"corpus": "corpus", "out": "out", "preset": "preset", "resume": "resume",
                  "max_steps": "train.max_steps", "epochs": "train.epochs",
                  "max_minutes": "train.max_minutes", "batch_size": "train.batch_size",
                  "masking": "mask.strategy", "lr": "optim.lr", "device": "train.device",
                  "strategy": "strategy", "init": "init"}


def resolve_pretrain(args: argparse.Namespace) -> Any:
    """The :class:`PretrainRunConfig` of parsed ``pretrain`` arguments (preset filled in)."""
    from neuript.config import to_dict
    from neuript.model.presets import preset
    from neuript.train.pretrain import PretrainRunConfig

    def with_preset(data: dict) -> dict:
        if args.max_steps is not None and args.epochs is None and "epochs" not in data.get(
                "train", {}):
            data = deep_merge(data, {"train": {"epochs": None}})  # --max-steps alone: steps
        model = to_dict(preset(data.get("preset", PretrainRunConfig.preset)))
        return {**data, "model": deep_merge(model, data.get("model") or {})}

    return build_config(PretrainRunConfig, args, PRETRAIN_FLAGS, with_preset)


def cmd_pretrain(args: argparse.Namespace) -> None:
    """Masked-reconstruction pretraining (``train.pretrain.run_pretrain``)."""
    from neuript.train.pretrain import run_pretrain

    cfg = resolve_pretrain(args)
    show_config(cfg)  # run_pretrain writes out/config.json before any work
    result = run_pretrain(cfg)
    print(json.dumps({k: str(v) if isinstance(v, Path) else v
                      for k, v in dataclasses.asdict(result).items()}, indent=2))


FINETUNE_FLAGS = {"task": "task", "init": "init", "model": "model", "preset": "preset",
                  "out": "out_dir", "epochs": "train.epochs", "max_steps": "train.max_steps",
                  "batch_size": "train.batch_size", "lr": "optim.lr", "device": "train.device",
                  "seeds": "seeds", "data_dir": "data_dir", "data_root": "data_root",
                  "scheme": "scheme", "bids_root": "bids_root", "events": "bids_events",
                  "window_s": "window_s", "allow_overlap": "allow_overlap",
                  "adapt_steps": "adapt_steps"}


def cmd_finetune(args: argparse.Namespace) -> None:
    """Fine-tune on a labelled task (``train.finetune.run_finetune``)."""
    from neuript.train.finetune import FinetuneRunConfig, run_finetune

    if args.seeds is not None:  # "--seeds 0 1" or "--seeds 0,1"
        values = [parse_value(text) for text in args.seeds]
        args.seeds = [v for value in values for v in (value if isinstance(value, list)
                                                      else [value])]
    if args.max_steps is not None and args.epochs is None:
        args.set = [*(args.set or []), "train.epochs=null"]
    cfg = build_config(FinetuneRunConfig, args, FINETUNE_FLAGS)
    show_config(cfg)  # run_finetune writes out_dir/config.json once its checks pass
    result = run_finetune(cfg)
    print(json.dumps({"run_dir": str(result.run_dir), "aggregate": result.aggregate,
                      "split_hash": result.split_hash}, indent=2, default=str))


def _task_options(args: argparse.Namespace) -> dict[str, Any]:
    return {k: parse_value(v) for k, _, v in (s.partition("=") for s in args.set or [])}


def _side_file(out: str | None, suffix: str) -> Path | None:
    return None if out is None else Path(out).with_suffix(suffix)


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Evaluate a fine-tuned model on a task split (``train.evaluate.run_evaluate``)."""
    from neuript.train.evaluate import run_evaluate

    settings = {"model_dir": args.model_dir, "task": args.task, "split": args.split,
                "data_dir": args.data_dir, "data_root": args.data_root, "out": args.out,
                "task_options": _task_options(args), "batch_size": args.batch_size,
                "device": args.device, "allow_overlap": args.allow_overlap}
    body = show_config(settings)
    result = run_evaluate(args.model_dir, args.task, split=args.split, data_dir=args.data_dir,
                          data_root=args.data_root, task_options=settings["task_options"],
                          out=args.out, batch_size=args.batch_size, device=args.device,
                          allow_overlap=args.allow_overlap)
    save_config(body, _side_file(args.out, ".config.json"))
    print(json.dumps({"metrics": result.metrics, "n_windows": result.n_windows,
                      "predictions": str(result.predictions_path),
                      "pretraining_overlap": result.pretraining_overlap}, indent=2, default=str))


def cmd_probe(args: argparse.Namespace) -> None:
    """Linear-SVM probe of frozen encoder features on a task (``train.probe.run_probe``)."""
    from neuript.data.tasks import build_task
    from neuript.train.probe import run_probe

    task = build_task(args.task, data_dir=args.data_dir, data_root=args.data_root,
                      **_task_options(args))
    result = run_probe(args.init, task, scheme=args.scheme, preset_name=args.preset,
                       device=args.device, allow_overlap=args.allow_overlap)
    print(json.dumps({"init": args.init, "task": task.name, "test": result.test,
                      "c": result.c, "val_balanced_accuracy": result.val_balanced_accuracy,
                      "n_features": result.n_features}, indent=2))


READER_OPTION_HELP = ("KEY=VALUE option of the file's reader, repeatable (data_format=int32 for "
                      "a Neuroscan CNT; sfreq=250, ch_names=Fp1,Fp2, unit=uV for a .npy/.txt "
                      "export); see docs/byod.md")


def reader_options(items: Sequence[str] | None) -> dict[str, Any] | None:
    """``--reader-option KEY=VALUE`` flags → ``read_recording``'s reader options (None if none).

    Values are read as :func:`parse_value` reads them (``250`` → int, ``Fp1,Fp2`` stays text).
    """
    if not items:
        return None
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise NeuriptError(f"--reader-option {item!r} must look like KEY=VALUE, e.g. "
                               "data_format=int32")
        options[key.strip()] = parse_value(value)
    return options


POSITIONS_HELP = ("positions of electrodes without a 10-05 name: a CSV/TSV table name,x,y,z "
                  "(metres; x_mm,y_mm,z_mm columns for mm) or a montage file MNE reads "
                  "(.bvct, .elc, .sfp, …); see docs/byod.md")


def _recording_input(args: argparse.Namespace) -> Any:
    """The recording path, or the Recording read with ``--reader-option``/``--positions``."""
    options = reader_options(args.reader_option)
    if options is None and args.positions is None:
        return args.recording
    from neuript.data.io import read_recording
    from neuript.data.positions import read_positions, with_positions

    rec = read_recording(args.recording, reader_options=options)
    return rec if args.positions is None else with_positions(rec, read_positions(args.positions))


def cmd_predict(args: argparse.Namespace) -> None:
    """Classify every window of a recording (``predict.run_predict``)."""
    from neuript.predict import run_predict

    settings = {"recording": args.recording, "model_dir": args.model_dir, "out": args.out,
                "format": args.format, "batch_size": args.batch_size, "device": args.device,
                "engine": args.engine, "threads": args.threads,
                "reader_options": reader_options(args.reader_option), "positions": args.positions,
                "calibration": args.calibration, "events": args.events,
                "event_offset_s": args.event_offset_s}
    body = show_config(settings)
    result = run_predict(_recording_input(args), args.model_dir, out=args.out, fmt=args.format,
                         batch_size=args.batch_size, device=args.device, engine=args.engine,
                         threads=args.threads, calibration=args.calibration,
                         events=args.events, event_offset_s=args.event_offset_s)
    save_config(body, _side_file(args.out, ".config.json"))
    if args.out is None:
        print(result.rows.to_csv(index=False) if args.format == "csv"
              else result.rows.to_json(orient="records"))
    print(json.dumps(result.summary, indent=2, default=str))


def cmd_embed(args: argparse.Namespace) -> None:
    """Pooled features of every window of a recording (``predict.run_embed``)."""
    from neuript.predict import run_embed

    settings = {"recording": args.recording, "model_dir": args.model_dir, "out": args.out,
                "batch_size": args.batch_size, "device": args.device,
                "reader_options": reader_options(args.reader_option), "positions": args.positions,
                "calibration": args.calibration}
    body = show_config(settings)
    result = run_embed(_recording_input(args), args.model_dir, out=args.out,
                       batch_size=args.batch_size, device=args.device,
                       calibration=args.calibration)
    save_config(body, _side_file(args.out, ".config.json"))
    print(json.dumps({"features": list(result.features.shape), "out": str(result.out_path)}))


def cmd_stream(args: argparse.Namespace) -> None:
    """Classify a live LSL EEG stream window by window (``stream.run_stream``)."""
    from neuript.stream import StreamConfig, run_stream

    names = None if args.channels is None else tuple(
        n.strip() for n in args.channels.split(",") if n.strip())
    cfg = StreamConfig(stream_name=args.stream_name, source_id=args.source_id,
                       step_s=args.step_s, margin_s=args.margin_s, duration_s=args.duration_s,
                       max_predictions=args.max_predictions, timeout_s=args.timeout_s,
                       stall_s=args.stall_s, unit=args.unit, ch_names=names, csv=args.csv,
                       outlet=args.outlet, threads=args.threads, engine=args.engine,
                       compile=args.compile, calibration=tuple(args.calibration or ()))
    body = show_config({"model_dir": args.model_dir, **dataclasses.asdict(cfg)})
    result = run_stream(args.model_dir, cfg)
    save_config(body, _side_file(args.csv, ".config.json"))
    print(result.summary["line"])


def cmd_export(args: argparse.Namespace) -> None:
    """Export a fine-tuned model to ONNX, checked against PyTorch (``deploy.export_model_dir``)."""
    from neuript.deploy import export_model_dir, quantize_model_dir

    if args.int8 and args.out is not None:
        raise NeuriptError("--int8 writes MODEL_DIR/model.int8.onnx beside the folder's "
                           "model.onnx; drop --out")
    result = export_model_dir(args.model_dir, out=args.out, opset=args.opset)
    body = {"onnx": str(result.path), "channels": result.n_channels,
            "samples": result.n_samples, "groups": result.n_groups,
            "max_abs_logit_diff": result.max_abs_diff}
    if args.int8:
        int8 = quantize_model_dir(args.model_dir)
        body.update({"onnx_int8": str(int8.path), "int8_max_abs_logit_diff": int8.max_abs_diff})
    print(json.dumps(body, indent=2))


def cmd_tasks(args: argparse.Namespace) -> None:
    """List the registered tasks, or build one and print windows per split and class."""
    from neuript.data.tasks import TASKS, build_task, describe_task

    if args.name is None:
        width = max(len(k) for k in TASKS)
        for name in sorted(TASKS):
            print(f"{name:<{width}}  {TASKS[name].summary}")
        return
    options = _task_options(args)
    show_config({"task": args.name, "data_dir": args.data_dir, "data_root": args.data_root,
                 "options": options})
    task = build_task(args.name, data_dir=args.data_dir, data_root=args.data_root, **options)
    print(describe_task(task))


def cmd_config(args: argparse.Namespace) -> None:
    """List, print or regenerate the YAML presets of configs/ (``config_files``)."""
    from neuript.config_files import FILES, render, write_all
    from neuript.paths import REPO_ROOT

    if args.action == "list":
        for name, spec in FILES.items():
            print(f"{name}: {spec.header}")
    elif args.action == "dump":
        if not args.name:
            raise NeuriptError(f"config dump needs a name: one of {', '.join(FILES)}")
        print(render(args.name), end="")
    else:
        for path in write_all(args.name or REPO_ROOT / "configs"):
            print(path)


def cmd_info(args: argparse.Namespace) -> None:
    """Total and activated parameters of a preset's fine-tuning model (``describe_preset``)."""
    from neuript.model.presets import describe_preset

    print(describe_preset(args.preset))


INSPECT_FLAGS = {"manifest": "manifest", "bids_root": "bids_root", "events": "bids_events",
                 "window_s": "window_s", "split": "split",
                 "on_unknown": "task_options.on_unknown", "stride_s": "task_options.stride_s",
                 "montage": "task_options.montage"}
"""``inspect``'s flags → the :class:`FinetuneRunConfig` settings they set (as ``finetune``)."""


def cmd_inspect(args: argparse.Namespace) -> int:
    """Check a recording, manifest, BIDS folder or run before training (``neuript.inspect``).

    A manifest or BIDS folder is checked with the settings ``finetune`` reads (``--config``,
    ``--set``, the same flags, and ``--on-unknown``/``--stride-s``/``--montage`` for their task
    options), so the report is OK exactly when ``finetune``'s task build would pass.
    """
    from neuript.inspect import run_inspect
    from neuript.train.finetune import FinetuneRunConfig

    cfg = build_config(FinetuneRunConfig, args, INSPECT_FLAGS)
    report = run_inspect(args.path, manifest=cfg.manifest, bids_root=cfg.bids_root,
                         bids_events=cfg.bids_events, window_s=cfg.window_s, split=cfg.split,
                         task_options=cfg.task_options,
                         subjects_per_split=cfg.subjects_per_split,
                         reader_options=reader_options(args.reader_option))
    return 0 if report.ok else 1


# --------------------------------------------------------------------------------------------
# parser and entry point
# --------------------------------------------------------------------------------------------
def _doc(func: Callable) -> str:
    return (func.__doc__ or "").splitlines()[0].replace("``", "")


def _pretrain_parser(sub: Any) -> None:
    from neuript.train.pretrain import PretrainRunConfig

    p = sub.add_parser("pretrain", help=_doc(cmd_pretrain))
    p.add_argument("--corpus", help="corpus folder from `neuript prepare`")
    p.add_argument("--out", help="run folder")
    p.add_argument("--preset", help="tiny | small | paper")
    p.add_argument("--init", help="continue pretraining from a checkpoint (neuript-small, a run "
                   "or checkpoint folder); its model config replaces --preset")
    p.add_argument("--resume", action="store_const", const=True, help="continue the newest "
                   "intact checkpoint in --out (same corpus and settings; only --max-steps, "
                   "--epochs and --max-minutes may change)")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--batch-size", type=int, help="windows per step per process")
    p.add_argument("--masking", choices=("aamp", "random"))
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--device", help="auto | cpu | cuda[:i]")
    p.add_argument("--strategy", choices=("ddp", "fsdp"))
    common_flags(p, PretrainRunConfig)
    p.set_defaults(func=cmd_pretrain)


def _finetune_parser(sub: Any) -> None:
    from neuript.train.finetune import FinetuneRunConfig

    p = sub.add_parser("finetune", help=_doc(cmd_finetune))
    for flag in ("task", "init", "model", "preset", "out", "device", "scheme", "data-dir"):
        p.add_argument(f"--{flag}")
    p.add_argument("--seeds", nargs="+", help="one seed or a list: 1 2 3 (or 1,2,3)")
    p.add_argument("--bids-root", help="a BIDS EEG dataset folder instead of --task "
                   "(docs/byod.md); --manifest FILE takes a CSV/TSV manifest")
    p.add_argument("--events", help="BIDS events.tsv column holding the labels (trial_type)")
    p.add_argument("--window-s", type=float, help="window length (s) of a manifest/BIDS task")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--adapt-steps", type=int, help="domain-adaptive pretraining: AAMP steps on "
                   "the task's unlabelled training windows before fine-tuning (0)")
    p.add_argument("--allow-overlap", action="store_true", default=None,
                   help="run although the --init checkpoint was pretrained on test-split "
                   "subjects or recordings (recorded in metrics.json and the report)")
    common_flags(p, FinetuneRunConfig)
    p.set_defaults(func=cmd_finetune)


def _recording_parser(sub: Any, name: str, func: Callable, fmt: bool) -> None:
    p = sub.add_parser(name, help=_doc(func))
    p.add_argument("recording", help="recording file (EDF, BDF, GDF, FIF, BrainVision, …)")
    p.add_argument("--reader-option", action="append", metavar="KEY=VALUE",
                   help=READER_OPTION_HELP)
    p.add_argument("--positions", metavar="FILE", help=POSITIONS_HELP)
    p.add_argument("--model", dest="model_dir", required=True, help="fine-tuned model folder")
    p.add_argument("--calibration", nargs="+", metavar="FILE",
                   help="for a model fine-tuned with subject_norm: recordings of the same "
                   "person whose windows give the channel gains (default: the recording itself)")
    p.add_argument("--out", help="output file (printed when omitted)" if fmt else ".npy/.npz")
    if fmt:
        p.add_argument("--format", choices=("csv", "json"), default="csv")
        p.add_argument("--engine", choices=get_args(Engine), default="torch",
                       help="onnx: run the folder's ONNX export (neuript export) with ONNX "
                       "Runtime; onnx-int8: its int8 copy (neuript export --int8)")
        p.add_argument("--threads", type=int, default=None,
                       help="ONNX Runtime threads (default: every core)")
        p.add_argument("--events", nargs="*", metavar="DESCRIPTION",
                       help="one window per annotation with these descriptions (none named: "
                       "every annotation) instead of consecutive windows, for models "
                       "fine-tuned on event-locked epochs")
        p.add_argument("--event-offset-s", type=float, default=0.0,
                       help="window start relative to each event's onset (s), as the task "
                       "was built (default 0)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=func)


def _stream_parser(sub: Any) -> None:
    p = sub.add_parser("stream", help=_doc(cmd_stream))
    p.add_argument("--model", dest="model_dir", required=True, help="fine-tuned model folder")
    p.add_argument("--calibration", nargs="+", metavar="FILE",
                   help="for a model fine-tuned with subject_norm: recordings of the person on "
                   "the stream whose windows give the channel gains (required for such a model)")
    p.add_argument("--stream-name", help="LSL name of the EEG stream")
    p.add_argument("--source-id", help="LSL source id of the EEG stream")
    p.add_argument("--step-s", type=float, help="seconds between predictions (default: the "
                   "model's window length)")
    p.add_argument("--margin-s", type=float, help="past context before each window for the "
                   "filters (default: half the band-pass FIR, 17 s at 0.1-30 Hz, 64 Hz)")
    p.add_argument("--duration-s", type=float, help="stop after this many seconds")
    p.add_argument("--max-predictions", type=int, help="stop after this many predictions")
    p.add_argument("--timeout-s", type=float, default=10.0,
                   help="how long to look for the stream (10)")
    p.add_argument("--stall-s", type=float, default=10.0,
                   help="stop when no sample arrives for this long (10)")
    p.add_argument("--unit", choices=("auto", "V", "mV", "uV"), default="auto",
                   help="unit of the stream's values (auto: the LSL channel units, else µV)")
    p.add_argument("--channels", help="comma-separated names replacing the stream's channel "
                   "labels, in stream order")
    p.add_argument("--csv", help="one row per prediction; the summary goes to "
                   "<stem>.summary.json")
    p.add_argument("--outlet", help="publish the class probabilities on an LSL outlet of this "
                   "name (type Probabilities, one float32 channel per class)")
    p.add_argument("--threads", type=int, help="PyTorch threads (default: PyTorch's)")
    p.add_argument("--engine", choices=get_args(Engine), default="torch",
                   help="PyTorch, the folder's ONNX export (run `neuript export` first) or its "
                   "int8 copy (`neuript export --int8`)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model for one window before connecting (engine "
                   "torch; compiling takes a minute or more, each window then runs faster)")
    p.set_defaults(func=cmd_stream)


def build_parser() -> argparse.ArgumentParser:
    """The ``neuript`` parser with every subcommand."""
    from neuript import __version__
    from neuript.config import PreprocessConfig

    parser = argparse.ArgumentParser(prog="neuript", description="NeurIPT EEG foundation model "
                                     "toolkit: prepare, pretrain, finetune, evaluate, predict.")
    parser.add_argument("--version", action="version", version=f"neuript {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("prepare", help=_doc(cmd_prepare))
    p.add_argument("inputs", nargs="+", help="files or folders (relative to --data-root if "
                   "not found as given)")
    p.add_argument("--out", required=True, help="corpus folder")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--shard", help="i/n: process only the i-th of n slices of the files (its "
                   "fragment; the last shard in a shared --out assembles the corpus)")
    p.add_argument("--merge", action="store_true", help="the inputs are --shard run folders "
                   "(one per host, or one shared): verify them and assemble one corpus in --out")
    p.add_argument("--on-unknown", choices=("raise", "drop"), default="drop")
    p.add_argument("--reader-option", action="append", metavar="KEY=VALUE",
                   help=READER_OPTION_HELP + "; given to every file's reader")
    p.add_argument("--positions", metavar="FILE", help=POSITIONS_HELP)
    p.add_argument("--recording-norm", choices=get_args(SubjectNorm),
                   default="none", help="normalise each recording's windows as fine-tuning's "
                   "subject_norm does (a corpus for a model fine-tuned with it; default none)")
    p.add_argument("--flat-channels", choices=("drop", "reject"), default="drop",
                   help="an electrode flat for a whole recording (std below --flat_std_uv): "
                   "leave it out of that recording (drop, default) or keep it, so that every "
                   "window is rejected as flat (reject)")
    common_flags(p, PreprocessConfig, defaults=PREPARE_DEFAULTS)
    p.set_defaults(func=cmd_prepare)
    _pretrain_parser(sub)
    _finetune_parser(sub)

    p = sub.add_parser("evaluate", help=_doc(cmd_evaluate))
    p.add_argument("model_dir", help="fine-tuned model folder (RUN/seed_<s>/model)")
    p.add_argument("--task", required=True)
    p.add_argument("--split", choices=("train", "val", "test"), default="test")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="per-window predictions CSV")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--allow-overlap", action="store_true",
                   help="evaluate although the model's pretraining corpus holds subjects or "
                   "recordings of this split (recorded in the output)")
    common_flags(p)
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("probe", help=_doc(cmd_probe))
    p.add_argument("init", help="shipped checkpoint name (neuript-small), pretraining run "
                   "folder, or 'scratch' (a random encoder)")
    p.add_argument("--task", required=True)
    p.add_argument("--data-dir")
    p.add_argument("--scheme", default="functional", help="pooling groups (functional = IILP)")
    p.add_argument("--preset", default="small", help="preset of the random encoder (scratch)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--allow-overlap", action="store_true",
                   help="probe although the checkpoint was pretrained on test-split subjects")
    common_flags(p)
    p.set_defaults(func=cmd_probe)
    _recording_parser(sub, "predict", cmd_predict, fmt=True)
    _recording_parser(sub, "embed", cmd_embed, fmt=False)

    _stream_parser(sub)

    p = sub.add_parser("export", help=_doc(cmd_export))
    p.add_argument("model_dir", help="fine-tuned model folder (RUN/seed_<s>/model)")
    p.add_argument("--out", help="the .onnx file (default: MODEL_DIR/model.onnx)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--int8", action="store_true",
                   help="also write model.int8.onnx (int8 weights, for --engine onnx-int8)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("tasks", help=_doc(cmd_tasks))
    p.add_argument("name", nargs="?", help="build this task and print its window counts")
    p.add_argument("--data-dir")
    common_flags(p)
    p.set_defaults(func=cmd_tasks)

    p = sub.add_parser("info", help=_doc(cmd_info))
    p.add_argument("--preset", default="paper")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("config", help=_doc(cmd_config))
    p.add_argument("action", choices=("list", "dump", "write"),
                   help="list the committed presets, print one, or regenerate them all")
    p.add_argument("name", nargs="?", help="dump: a file name (e.g. pretrain_small.yaml); "
                   "write: the folder (default configs/)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("inspect", help=_doc(cmd_inspect))
    p.add_argument("path", nargs="?", help="a recording, manifest, BIDS folder, run or "
                   "checkpoint folder")
    p.add_argument("--manifest", help="a CSV/TSV manifest with path and label columns (as "
                   "finetune --manifest)")
    p.add_argument("--bids-root", help="a BIDS EEG dataset folder (as finetune --bids-root)")
    p.add_argument("--events", help="BIDS events.tsv column holding the labels (trial_type)")
    p.add_argument("--window-s", type=float, help="window length to check (s; default 4)")
    p.add_argument("--split", choices=("subject", "column"), help="as finetune --split: seeded "
                   "by subject (default) or the manifest's split column")
    p.add_argument("--on-unknown", choices=("raise", "drop"), help="unknown channel names: an "
                   "error (default) or dropped (task option on_unknown)")
    p.add_argument("--stride-s", type=float, help="window step (s; default: the window "
                   "length; task option stride_s)")
    p.add_argument("--montage", choices=("auto", "tcp", "monopolar", "as_is", "per_recording"),
                   help="the task's channel set (task option montage; per_recording: each "
                   "recording keeps its own channels; a list of channels: "
                   "--set task_options.montage=[Fp1,Cz])")
    p.add_argument("--reader-option", action="append", metavar="KEY=VALUE",
                   help=READER_OPTION_HELP)
    p.add_argument("--config", help="a finetune YAML config: its manifest or bids_root, "
                   "window_s, split, task_options and subjects_per_split are checked")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a finetune setting, as finetune --set: task_options.seed=3, "
                   "task_options.preprocess.h_freq_hz=20, subjects_per_split=2 (repeatable)")
    p.set_defaults(func=cmd_inspect)
    return parser


def _setup_logging(debug: bool) -> None:
    from neuript.train.distributed import RankZeroFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RankZeroFilter(int(os.environ.get("RANK", "0"))))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler])


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``neuript`` command (``sys.exit`` lives only here)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted anywhere on the line
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    args.debug = debug
    _setup_logging(debug)
    try:
        code = args.func(args)
    except NeuriptError as err:
        if args.debug:
            raise
        print(f"neuript: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("neuript: interrupted", file=sys.stderr)
        sys.exit(130)
    if code:
        sys.exit(code)  # e.g. `inspect` found problems
