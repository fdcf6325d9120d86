"""Fast checks of the benchmark harness: result schema, RESULTS.md rendering, CV folds, flags.

Nothing here trains a model: the result set is fabricated with known numbers so every rendered
figure and every met / not-met verdict can be checked against them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
from benchmarks import bench_ablation, bench_accuracy, bench_speed, run  # noqa: E402
from benchmarks.common import BenchOptions, cpu_model, load_results, write_part  # noqa: E402

from neuript.data.tasks.base import TaskWindows  # noqa: E402

REQUIRED_ROW_KEYS = {
    "model", "init", "protocol", "seeds", "balanced_accuracy_mean", "balanced_accuracy_std",
    "balanced_accuracy_ci95", "auroc_mean", "auc_pr_mean", "split_hash", "epochs", "command",
    "date", "wall_s",
}
MACHINE = {"nproc": 2, "cpu_model": "Fake CPU 9000", "torch": "2.13.0", "threads": 2,
           "load_average_1min": 0.5, "gpu": None}


def fake_row(model: str, init: str, ba: float, protocol: str = "paper_split",
             task: str = "mental_arithmetic") -> dict:
    """One accuracy row built the way bench_accuracy builds them, from fixed per-seed values."""
    from neuript.train.metrics import aggregate

    opts = BenchOptions(command="python -m benchmarks.run --only accuracy", seeds=(0, 1, 2))
    per_seed = [{"balanced_accuracy": ba + d, "auroc": 0.9, "auc_pr": 0.7, "cohen_kappa": 0.4,
                 "weighted_f1": 0.8} for d in (-0.01, 0.0, 0.01)]
    return {**bench_accuracy.row_base(opts, task, model, init, protocol),
            **bench_accuracy.metric_fields(aggregate(per_seed)), "split_hash": "abc123",
            "date": "2025-01-02T03:04:05+00:00", "wall_s": 12.0, "machine": MACHINE}


def fake_speed() -> dict:
    presets = []
    for name, wps, lat, params in (("tiny", 40.0, 3.0, 6e4), ("small", 30.0, 8.0, 4e5),
                                   ("d64", 9.0, 20.0, 1e6), ("paper", 0.2, 1200.0, 9e7)):
        flops = {"320": 2e9 if name != "paper" else 1e11, "256": 1.6e9}
        presets.append({
            "preset": name, "params_total": int(params), "params_activated": int(params * 0.8),
            "batch_size": 32, "train_windows_per_s": {"320": wps, "256": wps * 1.2},
            "forward_flops_per_window": flops, "latency_ms_4s_window": {"1": lat * 2, "2": lat},
            "latency_ms_per_window_b32": lat / 2, "train_peak_rss_delta_mb": 100.0,
            "onnxruntime_latency_ms_4s_window": ({"1": lat * 1.5, "2": lat * 1.5,
                                                  "dynamic_batch": {"1": lat * 2, "2": lat * 2}}
                                                 if name != "paper" else {}),
            "mfu_train": {"320": 3 * flops["320"] * wps / 1e11},
            "mfu_infer_all_threads": 0.1,
        })
    scaling = [{"axis": "samples", "n_channels": 20, "n_samples": 128, "windows_per_s": 20.0,
                "tokens_per_s": 51200.0}]

    def case(fast_ms: float, plain_ms: float) -> dict:
        return {"fast_ms": fast_ms, "plain_ms": plain_ms, "ratio": fast_ms / plain_ms,
                "fast_cpu_ms": fast_ms, "plain_cpu_ms": plain_ms, "cpu_ratio": fast_ms / plain_ms,
                "rounds": 3}

    train = {**case(500.0, 1000.0), "fast_windows_per_s": 16.0, "plain_windows_per_s": 8.0,
             "speedup": 2.0}
    fast = {"threads": 1, "train_batch": 8, "load_before_1min": 0.3, "load_after_1min": 1.1,
            "d64_train": train, "d64_latency": case(30.0, 60.0), "small_latency": case(8.0, 9.0)}

    def compiled(plain: float, fast: float, comp: float) -> dict:
        return {"compile_s": 80.0, "max_abs_logit_diff": 2e-7, "plain_ms": plain,
                "fast_ms": fast, "compiled_ms": comp, "compiled_over_plain": comp / plain,
                "compiled_over_fast": comp / fast, "rounds": 30}

    fast["compiled"] = {"threads": 1, "load_before_1min": 0.2, "load_after_1min": 0.9,
                        "d64": compiled(60.0, 30.0, 20.0), "small": compiled(9.0, 8.0, 5.0)}
    return {"meta": {"command": "python -m benchmarks.run --only speed", "date": "2025-01-01",
                     "machine": MACHINE, "wall_s": 300.0},
            "quick": False, "threads": 2, "fp32_matmul_peak_gflops": 100.0, "presets": presets,
            "scaling": scaling, "fast_paths": fast,
            "targets": bench_speed.targets(presets, 2, fast),
            "gpu": {"available": False, "note": "no GPU on this machine"}}


@pytest.fixture
def result_dir(tmp_path: Path) -> Path:
    rows = [fake_row("neuript", "pretrained", 0.78), fake_row("neuript", "scratch", 0.80),
            fake_row("eegnet", "-", 0.70), fake_row("bandpower_lr", "-", 0.66, "subject_cv")]
    rows[0]["pretrain"] = {"preset": "small", "strategy": "aamp", "corpus_hours": 6.3,
                           "corpus_windows": 5000, "steps": 300, "batch_size": 32,
                           "val_loss": 0.1}
    write_part(tmp_path, "mental_arithmetic", rows, bench_accuracy.markdown(rows))
    transfer = [fake_row("eegnet", "-", 0.6, task="adhd"), fake_row("eegnet", "-", 0.55,
                                                                    task="muse_p300")]
    write_part(tmp_path, "transfer", transfer, bench_accuracy.markdown_transfer(transfer))
    abl = [{"ablation": "pooling", "variant": "functional", "default": True, **rows[1]},
           {"ablation": "pooling", "variant": "mean", "default": False, **rows[2]}]
    write_part(tmp_path, "ablations", abl, bench_ablation.markdown(abl))
    speed = fake_speed()
    write_part(tmp_path, "speed", speed, bench_speed.markdown(speed))
    (tmp_path / "zz_extra.json").write_text(json.dumps({"answer": 42}))
    return tmp_path


def test_rows_carry_the_required_schema_and_fractions(result_dir: Path) -> None:
    rows = json.loads((result_dir / "mental_arithmetic.json").read_text())
    assert isinstance(rows, list) and len(rows) == 4
    for row in rows:
        assert REQUIRED_ROW_KEYS <= set(row)
        assert row["model"] in ("neuript", "eegnet", "shallowconvnet", "bandpower_lr")
        assert row["init"] in ("pretrained", "scratch", "-")
        assert row["protocol"] in ("paper_split", "subject_cv")
        lo, hi = row["balanced_accuracy_ci95"]
        assert 0 <= lo <= row["balanced_accuracy_mean"] <= hi <= 1
    scratch = rows[1]
    values = np.array([0.79, 0.80, 0.81])
    assert scratch["balanced_accuracy_mean"] == pytest.approx(values.mean())
    assert scratch["balanced_accuracy_std"] == pytest.approx(values.std(ddof=1))
    half = scratch["balanced_accuracy_ci95"][1] - values.mean()
    assert half == pytest.approx(4.302653 * values.std(ddof=1) / np.sqrt(3), rel=1e-4)


def test_results_md_is_rendered_from_every_json(result_dir: Path) -> None:
    text = run.render_results(load_results(result_dir))
    for heading in ("## Speed", "## MentalArithmetic", "## Transfer", "## Ablations",
                    "## zz_extra", "## Where neuript falls short of the paper and why"):
        assert heading in text, heading
    assert text.index("## Speed") < text.index("## MentalArithmetic") < text.index("## zz_extra")
    assert "`python -m benchmarks.run --only speed`" in text
    assert "Fake CPU 9000" in text and "torch 2.13.0" in text and "2 CPUs" in text
    assert "no GPU on this machine" in text
    assert "**80.00** ± 1.00" in text  # scratch row, percent with the std over seeds
    assert "86.46" in text and "67.70" in text  # the paper's rows beside ours
    assert '"answer": 42' in text
    assert "| `mental_arithmetic.json` | 2025-01-02T03:04:05+00:00 |" in text
    assert "48 s |" in text  # the four rows' wall times (12 s each) summed


def test_render_only_rewrites_results_md_and_part_markdown(result_dir: Path) -> None:
    (result_dir / "speed.md").write_text("stale")
    out = result_dir / "RESULTS.md"
    readme = Path(run.__file__).resolve().parents[1] / "README.md"
    before = readme.read_text()
    assert run.main(["--render-only", "--out", str(result_dir), "--results-md", str(out)]) == 0
    assert readme.read_text() == before  # fabricated results never reach the real README
    assert (result_dir / "speed.md").read_text().startswith("# Speed")
    assert "## Ablations" in out.read_text()


def test_targets_are_judged_from_the_numbers(result_dir: Path) -> None:
    rows = json.loads((result_dir / "mental_arithmetic.json").read_text())
    verdicts = {t: m for t, _, m in bench_accuracy.ma_targets(rows)}
    assert verdicts["NeurIPT from scratch >= 75.7 % balanced accuracy"] is True
    assert verdicts["NeurIPT from scratch >= EEGNet + 5 points"] is True  # 80.0 vs 70.0 + 5
    assert verdicts["pretrained > scratch"] is False  # 78.0 vs 80.0
    short = " ".join(bench_accuracy.shortfalls(rows))
    assert "6.3 h" in short and "2,200 h" in short and "did not beat" in short
    speed = {t["target"]: t["met"] for t in fake_speed()["targets"]}
    train = "d = 64 training windows/s, fast paths / plain >= 1.6x (same process, 1 thread(s))"
    assert speed[train] is True  # 16 vs 8 windows/s
    latency = "d = 64 one-window latency, fast paths / plain <= 0.4x (same process, 1 thread(s))"
    assert speed[latency] is False  # 30 / 60 ms
    assert speed["small preset <= 10 ms per window (1 window at a time, 1 thread, "
                 "1-min load 0.3)"] is True  # 8 ms
    assert speed["small preset <= 10 ms per window (batches of 32)"] is True
    compiled = ("d = 64 one-window latency, torch.compile / plain <= 0.4x (same process, 1 "
                "thread(s); `stream --compile`)")
    assert speed[compiled] is True  # 20 / 60 ms
    assert speed["small preset <= 10 ms per window (1 window at a time, 1 thread(s), "
                 "torch.compile: `stream --compile`, 1-min load 0.2)"] is True  # 5 ms
    ort_target = ("small preset <= 10 ms per window (1 window at a time, 1 thread, ONNX "
                  "Runtime: `predict --engine onnx`)")
    assert speed[ort_target] is False  # 12 ms
    assert speed["paper size training >= 80% of the measured fp32 matmul peak"] is False  # 60%
    # 3 x 1e11 FLOPs x 0.2 windows/s = 60 GFLOP/s = 36% of DESIGN.md's 168
    assert speed["paper size training >= 80% of DESIGN.md's 168 GFLOP/s peak"] is False


def test_speed_markdown_reports_the_in_run_fast_path_ratios() -> None:
    text = bench_speed.markdown(fake_speed())
    assert "## Fast paths vs the plain path (one process, interleaved)" in text
    assert "| d = 64 training step (20 x 320, batch 8) | 500.0 | 1000.0 | 0.500 |" in text
    assert "**2.00x**" in text and "1-min load 0.3 before, 1.1 after" in text
    assert "## One window through torch.compile (`neuript stream --compile`)" in text
    assert "| small | 9.00 | 8.00 | 5.00 | 0.56x | 0.62x | 80 | 2.0e-07 |" in text
    # the batch-1 ONNX session against the dynamic-batch one, timed in the same run: 12 / 16
    assert ("`small`, one window in ONNX Runtime, 1 thread: the session with the batch axis "
            "fixed to 1" in text and "12.00 ms against 16.00 ms" in text and "**0.75x**" in text)
    old = fake_speed()
    failed = fake_speed()
    failed["fast_paths"]["compiled"] = {"threads": 1, "load_before_1min": 0.2,
                                        "error": "InvalidCxxCompiler: no working C++ compiler"}
    assert "Not measured: compiling failed (InvalidCxxCompiler" in bench_speed.markdown(failed)
    del old["fast_paths"]  # results written before the section existed still render
    del old["presets"][1]["onnxruntime_latency_ms_4s_window"]["dynamic_batch"]
    assert "`small`, one window in ONNX Runtime" not in bench_speed.markdown(old)
    assert "Fast paths" not in bench_speed.markdown(old)


def test_speed_caveat_uses_the_load_before_the_part() -> None:
    """The part's own processes load every core; only load present before it means 'busy'."""
    speed = fake_speed()
    speed["meta"]["machine"] = {**MACHINE, "load_average_1min": 1.9, "nproc": 2}
    speed["load_before_1min"] = 0.1
    text = bench_speed.markdown(speed)
    assert "machine was busy" not in text
    assert "| small |" in text and "| 12.0 / 12.0 |" in text  # ONNX Runtime column
    speed["load_before_1min"] = 1.2
    assert "1-min load 1.2 on 2 cores when this part began" in bench_speed.markdown(speed)


def test_ablation_delta_is_against_the_default(result_dir: Path) -> None:
    text = (result_dir / "ablations.md").read_text()
    assert "functional *" in text and "-10.00" in text and "+0.00" in text


def _task(n_subjects: int, class_pure: bool) -> TaskWindows:
    subjects = np.repeat([f"S{i:02d}" for i in range(n_subjects)], 4)
    labels = (np.arange(n_subjects).repeat(4) % 2 if class_pure
              else np.tile([0, 1, 0, 1], n_subjects)).astype(np.int64)
    thirds = np.array(["train", "val", "test"])[np.arange(n_subjects) * 3 // n_subjects]
    n = len(subjects)
    return TaskWindows("fake", np.zeros((n, 2, 8), np.float32), labels, subjects,
                       thirds.repeat(4), subjects.copy(), np.arange(n), ("Cz", "Pz"),
                       np.zeros((2, 3), np.float32), ("a", "b"))


def test_subject_folds_put_every_subject_in_test_exactly_once() -> None:
    task = _task(36, class_pure=False)
    folds = bench_accuracy.subject_folds(task.subjects, 6)
    assert [len(f) for f in folds] == [6] * 6
    tested = []
    for k in range(6):
        fk = bench_accuracy.fold_task(task, folds, k)
        for subject in set(task.subjects):
            assert len(set(fk.splits[task.subjects == subject])) == 1  # no subject straddles
        tested += sorted(set(fk.subjects[fk.splits == "test"]))
        assert set(fk.subjects[fk.splits == "val"]) == set(folds[(k + 1) % 6])
        assert np.array_equal(fk.labels, task.labels)
    assert sorted(tested) == sorted(set(task.subjects))


def test_subset_keeps_both_classes_when_subjects_are_class_pure() -> None:
    task = _task(12, class_pure=True)
    small = bench_accuracy.subset_task(task, 1)
    for split in ("train", "val", "test"):
        labels = small.labels[small.splits == split]
        assert set(labels) == {0, 1}
        assert len(set(small.subjects[small.splits == split])) == 2
    assert bench_accuracy.subset_task(task, None) is task


def test_accuracy_rows_record_their_recipe_and_old_rows_are_flagged(tmp_path: Path) -> None:
    opts = BenchOptions(command="x", seeds=(0,))
    cfg = bench_accuracy.finetune_config(opts, "mental_arithmetic", "neuript", "scratch", tmp_path)
    recipe = bench_accuracy.recipe_fields(cfg)["recipe"]
    assert recipe == {"optim.lr": 3e-3, "train.epochs": cfg.train.epochs,
                      "pool_stats": "mean_logstd"}  # the small preset's, the study's default
    assert bench_accuracy.recipe_fields(
        bench_accuracy.finetune_config(opts, "mental_arithmetic", "eegnet", "scratch",
                                       tmp_path)) == {}
    old = [fake_row("neuript", "scratch", 0.6), fake_row("bandpower_lr", "-", 0.7)]
    assert "not recorded" in bench_accuracy.recipe_line(old)
    new = [{**old[0], "recipe": recipe}, old[1]]
    line = bench_accuracy.recipe_line(new)
    assert "optim.lr = 0.003" in line and "pool_stats = mean_logstd" in line
    assert "recipe: not recorded" in bench_accuracy.markdown(old)


def test_flags_quick_defaults_and_explicit_overrides() -> None:
    argv = ["--quick", "--seeds", "3", "4", "--only", "accuracy"]
    opts = run.options_from_args(run.parse_args(argv), argv)
    assert opts.quick and opts.seeds == (3, 4) and opts.subjects_per_split == 1
    assert opts.command == "python -m benchmarks.run --quick --seeds 3 4 --only accuracy"
    full = run.options_from_args(run.parse_args([]), [])
    assert full.seeds == (0, 1, 2, 3, 4) and full.max_steps is None and not full.quick
    assert run.main(["--only", "bogus", "--render-only", "--out", "/nonexistent"]) == 2


def test_cpu_model_reads_proc_cpuinfo(tmp_path: Path) -> None:
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: sse\n")
    assert cpu_model(fake) == "AMD EPYC 7B13"


def test_flop_counter_matches_the_matmul_count() -> None:
    torch.set_num_threads(1)
    layer = torch.nn.Linear(64, 32, bias=False)
    assert bench_speed.forward_flops(layer, (torch.randn(5, 64),)) == 2 * 5 * 64 * 32
    assert bench_speed.matmul_peak_gflops(n=128, seconds=0.05) > 0


def test_speed_inputs_use_real_montages() -> None:
    inputs = bench_speed.make_inputs(20, 64, 3)
    assert inputs["signals"].shape == (3, 20, 64)
    assert inputs["group_mask"].shape[0] == 3 and inputs["group_mask"].shape[2] == 20
    assert inputs["group_mask"].any(dim=2).all()  # every lobe holds a channel
    names, pos = bench_speed.montage(4)
    assert names == ["TP9", "AF7", "AF8", "TP10"] and pos.shape == (4, 3)


def test_duration_plan_counts_the_training_windows() -> None:
    full = run.planned_windows(BenchOptions())
    assert full["accuracy"] == 300 * 32 + 2 * 5 * 10 * 1343  # pretraining + two NeurIPT rows
    assert full["ablation"] == 300 * 32 + 8 * 3 * 3 * 1343  # 3 seeds x 3 epochs per variant
    quick = run.planned_windows(BenchOptions().quick_version())
    assert quick["accuracy"] == 2 * 4 + 2 * 1 * 1 * 2 * 8  # 2 steps of 8 windows per row


def test_readme_block_is_replaced_between_markers(result_dir: Path, tmp_path: Path) -> None:
    from benchmarks import run

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold numbers\n<!-- results:end -->\noutro\n")
    assert run.update_readme(readme, load_results(result_dir))
    text = readme.read_text()
    assert "old numbers" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "benchmarks/RESULTS.md" in text and "| neuript |" in text.replace("`", "")
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    assert not run.update_readme(plain, {}) and plain.read_text() == "no markers\n"


def test_stream_benchmark_model_folder_loads_with_the_task_contract(tmp_path: Path) -> None:
    """bench_stream's random `small` classifier is a model folder predict reads: the
    MentalArithmetic channels, rate and window (a stale ClassifierInfo call broke the part)."""
    from benchmarks.bench_stream import small_model_dir

    from neuript.data.tasks.mental_arithmetic import PREPROCESS
    from neuript.model_folder import load_classifier

    loaded = load_classifier(small_model_dir(tmp_path / "model"))
    assert loaded.contract.preprocess == PREPROCESS
    assert len(loaded.contract.channels) == 20
    assert loaded.info.class_names == ("rest", "task")


def test_stream_markdown_states_both_in_run_ratios() -> None:
    """stream.md: a row per session (compiled one named), ratios to eager torch of the run."""
    from benchmarks.bench_stream import RUNS, label, markdown, median_ratio

    rows = [{"engine": label(e, c), "predictions": 60, "latency_ms": {"median": ms, "p99": ms},
             "dropped": 0, "skipped": 0, "late": 0, "stopped_by": "max_predictions",
             "session_s": 40.0} for (e, c), ms in zip(RUNS, (30.0, 24.0, 15.0))]
    body = {"rows": rows, "onnx_over_torch_median": median_ratio(rows, "onnx"),
            "compiled_over_torch_median": median_ratio(rows, "torch --compile"),
            "recording": "eegmat/x.edf", "step_s": 0.5, "margin_s": 17.0, "preset": "small"}
    text = markdown(body)
    assert "| `torch --compile` | 60 | 15.00 |" in text
    assert "ONNX Runtime / PyTorch median latency in this run: **0.80**" in text
    assert "Compiled (`--compile`) / eager PyTorch median latency in this run: **0.50**" in text
    assert median_ratio(rows[:2], "torch --compile") is None


def test_int8_markdown_states_the_in_run_latency_ratio() -> None:
    """int8.md: one row per engine and the int8 / fp32 ratio from the same run's medians."""
    from benchmarks.bench_int8 import ENGINES, markdown

    rows = [{"engine": e, "balanced_accuracy": 0.8, "agreement_with_torch": 1.0,
             "max_abs_proba_diff": 0.0, "latency_ms": ms} for e, ms in zip(ENGINES, (9, 6, 4.5))]
    text = markdown({"rows": rows, "windows": 96, "files": ["a"] * 8, "epochs": 3,
                     "onnx_mb": 1.4, "int8_mb": 1.3, "date": "d", "machine": {},
                     "command": "c", "wall_s": 60})
    assert all(f"| `{e}` |" in text for e in ENGINES)
    assert "**0.75x**" in text and "96 windows" in text


def test_op_breakdown_counts_calls_and_splits_the_time() -> None:
    """The profile's classes partition the self time; calls are per call of the function."""
    from benchmarks.bench_speed import op_breakdown

    # 512^3 multiply-adds per mm (milliseconds), so one descheduling of the tiny relu on a
    # loaded machine cannot outweigh the two matmuls
    a = torch.randn(512, 512)

    def fn() -> None:
        torch.mm(a, a)
        torch.mm(a, a).relu()

    p = op_breakdown(fn, reps=3)
    assert sum(p["shares"].values()) == pytest.approx(1.0)
    assert p["shares"]["matmul"] > 0.5 and p["top"][0]["op"] == "aten::mm"
    assert p["top"][0]["calls"] == pytest.approx(2.0)
