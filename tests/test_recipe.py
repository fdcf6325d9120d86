"""The fine-tuning recipe's parts: augmentations, log-std pooling, LP-FT head, LR groups, health."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from _finetune_data import MICRO, reduced_task, thin
from neuript.config import AugmentConfig, OptimConfig, TrainConfig
from neuript.data.augment import augment_windows
from neuript.errors import NeuriptError
from neuript.model.heads import PoolingHead, time_pool
from neuript.train.finetune import FinetuneRunConfig, run_finetune
from neuript.train.finetune_seed import training_warnings
from neuript.train.loop import build_optimizer


def _signals(seed: int = 0) -> torch.Tensor:
    return torch.randn(4, 3, 64, generator=torch.Generator().manual_seed(seed)) * 20.0


# ---- augmentations ------------------------------------------------------------------------
def test_inactive_augment_returns_the_input_unchanged():
    x = _signals()
    assert augment_windows(x, AugmentConfig(), 64.0, torch.Generator()) is x


def test_augment_is_a_pure_function_of_the_generator():
    x, cfg = _signals(), AugmentConfig(0.2, 1.0, 0.3, 0.25)
    a = augment_windows(x, cfg, 64.0, torch.Generator().manual_seed(5))
    b = augment_windows(x, cfg, 64.0, torch.Generator().manual_seed(5))
    c = augment_windows(x, cfg, 64.0, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, _signals())  # the caller's tensor is not modified


def test_time_shift_is_a_roll_and_scale_is_per_window():
    x = _signals()
    shifted = augment_windows(x, AugmentConfig(time_shift_s=0.5), 64.0,
                              torch.Generator().manual_seed(1))
    for b in range(x.shape[0]):  # each window equals its input rolled by some |s| <= 32
        assert any(torch.equal(shifted[b], torch.roll(x[b], s, dims=-1)) for s in range(-32, 33))
    scaled = augment_windows(x, AugmentConfig(scale_range=0.2), 64.0,
                             torch.Generator().manual_seed(1))
    ratio = scaled / x
    for b in range(x.shape[0]):
        assert torch.allclose(ratio[b], ratio[b, 0, 0]) and 0.8 <= ratio[b, 0, 0] <= 1.2


def test_channel_dropout_zeros_whole_channels():
    x = _signals()
    out = augment_windows(x, AugmentConfig(channel_dropout=0.5), 64.0,
                          torch.Generator().manual_seed(2))
    zeroed = (out == 0).all(dim=-1)
    kept = (out == x).all(dim=-1)
    assert (zeroed | kept).all() and zeroed.any() and kept.any()


def test_augment_config_refuses_bad_values():
    with pytest.raises(NeuriptError, match="channel_dropout"):
        AugmentConfig(channel_dropout=1.0)
    with pytest.raises(NeuriptError, match="noise_uv"):
        AugmentConfig(noise_uv=-1.0)


# ---- log-std pooling ------------------------------------------------------------------------
def test_time_pool_logstd_is_the_log_of_the_time_std():
    tokens = torch.randn(2, 3, 10, 4)
    pooled = time_pool(tokens, "mean_logstd")
    assert pooled.shape == (2, 3, 8)
    torch.testing.assert_close(pooled[..., :4], tokens.mean(dim=2))
    expected = torch.log(torch.sqrt(tokens.var(dim=2, unbiased=False) + 1e-6))
    torch.testing.assert_close(pooled[..., 4:], expected)
    assert torch.isfinite(time_pool(torch.zeros(1, 1, 5, 2), "mean_logstd")).all()


def test_logstd_head_doubles_the_features_and_sees_power():
    head = PoolingHead(d=4, n_levels=2, n_groups=1, n_classes=2, stats="mean_logstd")
    assert head.n_features == 2 * 1 * 4 * 2
    quiet, loud = torch.randn(1, 3, 50, 4), None
    loud = quiet * 10.0
    masks = (torch.ones(1, 3, dtype=torch.bool), torch.ones(1, 1, 3, dtype=torch.bool))
    f_quiet = head.pool([quiet, quiet], *masks)
    f_loud = head.pool([loud, loud], *masks)
    # the log-std half moves by log(10) for a 10x louder signal; the mean half scales
    torch.testing.assert_close(f_loud[0, 4:8] - f_quiet[0, 4:8],
                               torch.full((4,), math.log(10.0)), atol=1e-3, rtol=0)


# ---- optimiser groups ---------------------------------------------------------------------
class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(3, 3)
        self.head = torch.nn.Linear(3, 2)


def test_lr_scale_makes_groups_with_scaled_peaks():
    opt = build_optimizer(_Net(), OptimConfig(lr=1e-3),
                          lr_scale=lambda n: 10.0 if n.startswith("head.") else 1.0)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["decay@10"]["lr"] == pytest.approx(1e-2)
    assert by_name["decay"]["lr"] == pytest.approx(1e-3)
    assert len(by_name["decay@10"]["params"]) == 1 and len(by_name["no_decay@10"]["params"]) == 1


# ---- run health -----------------------------------------------------------------------------
def test_training_warnings_name_chance_and_rising_loss():
    flat = [{"epoch": e, "train_loss": 0.7 + 0.1 * e, "val_balanced_accuracy": 0.5}
            for e in (1, 2, 3)]
    warnings = training_warnings(flat, 2)
    assert len(warnings) == 2
    assert "never left chance" in warnings[0] and "optim.lr" in warnings[0]
    assert "training loss rose" in warnings[1]
    good = [{"epoch": e, "train_loss": 0.7 - 0.1 * e, "val_balanced_accuracy": 0.6 + 0.05 * e}
            for e in (1, 2, 3)]
    assert training_warnings(good, 2) == []


def test_a_test_set_called_one_class_is_named_with_its_cause():
    from neuript.train.evaluate import collapse_warning

    labels = np.array([0, 0, 0, 1, 1])
    one_class = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4], [0.55, 0.45]])
    text = collapse_warning(one_class, labels, 1.0, ["rest", "task"])
    assert "every test window was called 'rest'" in text and "AUROC 1.000" in text
    assert "--subject_norm spectral" in text
    assert "does not rank them" in collapse_warning(one_class, labels, 0.5, ["rest", "task"])
    both = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.4, 0.6]])
    assert collapse_warning(both, labels, 0.8, ["rest", "task"]) is None
    assert collapse_warning(one_class, np.zeros(5, int), 0.8, ["rest", "task"]) is None
    assert "every val window" in collapse_warning(one_class, labels, 0.9, ["rest", "task"], "val")


# ---- LP-FT on real windows ------------------------------------------------------------------
@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return thin(reduced_task(tmp_path_factory.mktemp("eegmat")), 2)


def test_linear_probe_head_is_epoch_zero_and_matches_its_probe(task, tmp_path):
    from neuript.data.loader import make_task_loader
    from neuript.data.montage import pooling_groups
    from neuript.train.evaluate import predict_batches
    from neuript.train.finetune_seed import build_model
    from neuript.train.probe import init_head_by_probe

    torch.manual_seed(0)
    cfg = FinetuneRunConfig(preset="tiny", model_overrides={**MICRO, "pool_stats": "mean_logstd"})
    groups = pooling_groups(list(task.ch_names), task.positions, "functional")
    model = build_model(cfg, task, groups.names)
    result = init_head_by_probe(model, task)
    loader = make_task_loader(task, "val", batch_size=64, shuffle=False, seed=0)
    preds = predict_batches(model.eval(), loader, torch.device("cpu"))
    got = balanced_accuracy_score(preds.labels, preds.proba.argmax(axis=1))
    assert got == pytest.approx(result.val_balanced_accuracy, abs=1e-9)
    assert got > 0.6  # the frozen micro encoder's log-std features separate rest from task

    run = run_finetune(FinetuneRunConfig(
        preset="tiny", model_overrides={**MICRO, "pool_stats": "mean_logstd"}, seeds=(1,),
        head_init="linear_probe", optim=OptimConfig(lr=1e-4), out_dir=str(tmp_path / "lpft"),
        augment=AugmentConfig(0.1, 0.5, 0.1, 0.25), report=False,
        train=TrainConfig(batch_size=16, epochs=2, threads=1)), task=task)
    curves = [json.loads(line) for line in
              (run.run_dir / "seed_1" / "curves.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in curves] == [0, 1, 2] and "head_init_c" in curves[0]
    # selection keeps the best of the probe (epoch 0) and the fine-tuned epochs
    best = max(r["val_balanced_accuracy"] for r in curves)
    assert run.per_seed[0]["val"]["balanced_accuracy"] == pytest.approx(best)
    assert np.isfinite(run.per_seed[0]["test"]["balanced_accuracy"])


def test_a_frozen_encoder_trains_its_head_without_dropout(task):
    from neuript.data.loader import make_task_loader
    from neuript.data.montage import pooling_groups
    from neuript.train.finetune_seed import build_model, set_encoder_trainable

    torch.manual_seed(0)
    cfg = FinetuneRunConfig(preset="tiny", model_overrides={**MICRO, "dropout": 0.5})
    model = build_model(cfg, task, pooling_groups(list(task.ch_names), task.positions,
                                                  "functional").names).train()
    batch = next(iter(make_task_loader(task, "train", batch_size=8, shuffle=False, seed=0)))

    def features():
        return model(batch.signals, batch.positions, batch.channel_mask,
                     batch.group_mask).features.detach()

    assert not torch.equal(features(), features())  # dropout 0.5 is live in training mode
    set_encoder_trainable(model, False)
    first = features()
    assert torch.equal(first, features()) and not model.encoder.training and model.head.training
    assert not any(p.requires_grad for n, p in model.named_parameters()
                   if not n.startswith("head."))
    set_encoder_trainable(model, True)
    model.train()
    assert model.encoder.training and not torch.equal(features(), features())


def test_weight_average_is_the_exponential_moving_average():
    from neuript.train.finetune_seed import weight_average

    net = torch.nn.Linear(2, 1)
    assert weight_average(net, 0.0) is None
    ema = weight_average(net, 0.75)
    with torch.no_grad():
        net.weight.fill_(1.0)
        ema.update_parameters(net)  # the first update copies
        net.weight.fill_(5.0)
        ema.update_parameters(net)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.75 * 1.0 + 0.25 * 5.0))
    with pytest.raises(NeuriptError, match="ema_decay"):
        FinetuneRunConfig(ema_decay=1.0)


def test_weight_averaged_run_saves_the_model_it_selected(task, tmp_path):
    from neuript.data.loader import make_task_loader
    from neuript.model_folder import load_classifier
    from neuript.train.evaluate import predict_batches

    run = run_finetune(FinetuneRunConfig(
        preset="tiny", model_overrides=MICRO, seeds=(3,), ema_decay=0.9, report=False,
        out_dir=str(tmp_path / "ema"), train=TrainConfig(batch_size=16, epochs=2, threads=1)),
        task=task)
    row = run.per_seed[0]
    curves = [json.loads(line) for line in
              (run.run_dir / "seed_3" / "curves.jsonl").read_text().splitlines()]
    best = max(curves, key=lambda r: (r["val_balanced_accuracy"], -r["val_loss"]))
    assert row["best_epoch"] == best["epoch"]
    assert row["val"]["loss"] == pytest.approx(best["val_loss"])
    # the saved folder holds the averaged weights that were scored, not the last raw ones
    saved = load_classifier(row["model_dir"]).model
    loader = make_task_loader(task, "val", batch_size=64, shuffle=False, seed=0)
    preds = predict_batches(saved, loader, torch.device("cpu"))
    got = balanced_accuracy_score(preds.labels, preds.proba.argmax(axis=1))
    assert got == pytest.approx(row["val"]["balanced_accuracy"], abs=1e-9)
    # and the average is what validation scored: the same seed without it scores otherwise
    raw = run_finetune(FinetuneRunConfig(
        preset="tiny", model_overrides=MICRO, seeds=(3,), report=False,
        out_dir=str(tmp_path / "raw"), train=TrainConfig(batch_size=16, epochs=2, threads=1)),
        task=task)
    raw_curves = [json.loads(line) for line in
                  (raw.run_dir / "seed_3" / "curves.jsonl").read_text().splitlines()]
    assert raw_curves[0]["train_loss"] == pytest.approx(curves[0]["train_loss"])  # same steps
    assert raw_curves[0]["val_loss"] != pytest.approx(curves[0]["val_loss"], abs=1e-6)


# ---- segment merging without LayerNorm --------------------------------------------------------
def test_merge_without_layernorm_keeps_segment_amplitude():
    from neuript.model.encoder import SegmentMerge

    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 4)
    plain, normed = SegmentMerge(4, 2, "none"), SegmentMerge(4, 2, "layer")
    with torch.no_grad():
        bias = plain.proj.bias
        torch.testing.assert_close(plain(3 * x) - bias, 3 * (plain(x) - bias))
        torch.testing.assert_close(normed(3 * x), normed(x), atol=1e-4, rtol=1e-4)  # amplitude gone
    assert "merge_norm" in str(pytest.raises(NeuriptError, _bad_merge_norm).value)


def _bad_merge_norm():
    from neuript.config import ModelConfig

    ModelConfig(merge_norm="batch")


# ---- the defaults are the study's chosen row ----------------------------------------------------
def test_library_defaults_equal_the_recipe_study_default_row():
    from dataclasses import replace
    from pathlib import Path

    from benchmarks.bench_recipe import DEFAULT, VARIANTS, cell_config, recipe_base
    from benchmarks.common import BenchOptions

    from neuript.train.finetune_seed import neuript_model_config

    opts = BenchOptions(threads=1, work_dir=Path("unused"))
    chosen = cell_config(opts, DEFAULT, 0, 0)
    library = recipe_base(opts, "neuript", Path(chosen.out_dir), (0,))
    assert VARIANTS[DEFAULT].model == "neuript"
    assert neuript_model_config(chosen) == neuript_model_config(library)
    same = {"model_overrides": {}, "out_dir": "x"}
    assert replace(chosen, **same) == replace(library, **same)


# ---- the study's table ------------------------------------------------------------------------
def _cell(variant, fold, seed, bacc, error=None):
    cell = {"variant": variant, "fold": fold, "seed": seed, "wall_s": 1.0}
    if error:
        cell["error"] = error
    else:
        cell["test"] = {"balanced_accuracy": bacc, "auroc": bacc}
    return cell


def test_recipe_rows_pair_cells_and_keep_failures():
    from benchmarks.bench_recipe import PAPER, REFERENCE, TODAY, markdown, variant_row
    from benchmarks.common import BenchOptions

    cells = {
        REFERENCE: [_cell(REFERENCE, k, 0, 0.6 + 0.01 * k) for k in range(3)],
        TODAY: [_cell(TODAY, k, s, 0.5) for k in range(3) for s in (0, 1)],
        "logstd": [_cell("logstd", k, s, 0.62 + 0.01 * k) for k in range(3) for s in (0, 1)]
        + [_cell("logstd", 0, 2, None, error="NeuriptError: boom"),
           _cell("logstd", PAPER, 0, 0.9)],
    }
    row = variant_row("logstd", cells["logstd"], cells, BenchOptions())
    assert row["cells"] == 6 and row["failed"] == 1 and row["errors"] == ["NeuriptError: boom"]
    assert row["vs_bandpower"]["mean"] == pytest.approx(0.02)  # paired by fold, any seed
    assert row["vs_today"]["mean"] == pytest.approx(0.13) and row["vs_today"]["n"] == 6
    assert row["paper_split_mean"] == pytest.approx(0.9)  # kept apart from the CV mean
    assert row["balanced_accuracy_mean"] == pytest.approx(0.63)
    text = markdown({"rows": [row], "tasks": [], "date": "d", "machine": {}, "command": "c"})
    assert "6 (+1 failed: NeuriptError: boom)" in text and "+2.0" in text and "Not run yet" in text


def test_recipe_cell_store_survives_a_fresh_work_folder(tmp_path, monkeypatch):
    """Cells outlive the ignored work folder; a changed variant spec drops its stored cells."""
    import benchmarks.bench_recipe as br
    from benchmarks.common import BenchOptions

    opts = BenchOptions(out_dir=tmp_path / "results", work_dir=tmp_path / "work")
    cells = {br.REFERENCE: [_cell(br.REFERENCE, k, 0, 0.6) for k in range(2)],
             "logstd": [_cell("logstd", 0, s, 0.7) for s in (0, 1)]}
    br.write_store(opts, cells)
    assert (opts.out_dir / br.STORE).is_file() and not opts.work_dir.exists()
    back = br.cached_cells(opts)
    assert {n: [(c["fold"], c["seed"]) for c in v] for n, v in back.items()} == {
        br.REFERENCE: [(0, 0), (1, 0)], "logstd": [(0, 0), (0, 1)]}
    assert back["logstd"][1]["test"]["balanced_accuracy"] == 0.7

    monkeypatch.setattr(br, "VARIANTS", dict(br.VARIANTS, logstd=br.Variant("other",
                                                                            {"optim.lr": 1.0})))
    assert set(br.cached_cells(opts)) == {br.REFERENCE}


def test_band_power_cells_do_not_depend_on_the_recipe_fields():
    """Band power reads none of FinetuneRunConfig's recipe fields: a new field (ema_decay) once
    dropped its stored cells because it was keyed on the whole resolved config."""
    import benchmarks.bench_recipe as br
    from benchmarks.common import BenchOptions

    from neuript.config import to_dict

    opts = BenchOptions()
    resolved = json.loads(json.dumps(to_dict(br.cell_config(opts, br.REFERENCE, 0, 0)),
                                     default=str))
    key = br.cell_key(opts, br.REFERENCE, resolved)
    assert key["model"] == "bandpower_lr" and "ema_decay" not in json.dumps(key)
    assert br.cell_key(opts, br.REFERENCE, {**resolved, "ema_decay": 0.5}) == key


def test_other_task_cells_survive_a_pass_without_the_work_folder(tmp_path):
    """A pass in a fresh checkout keeps the last table's other-task rows; fresh cells win."""
    import json

    from benchmarks.bench_recipe import merged_task_cells, other_tasks

    first, second = list(other_tasks())[:2]
    old = [{"task": second, "model": "neuript", "test": {"balanced_accuracy": 0.4}},
           {"task": first, "model": "neuript", "test": {"balanced_accuracy": 0.5}},
           {"task": first, "model": "bandpower_lr", "test": {"balanced_accuracy": 0.6}}]
    previous = tmp_path / "recipe.json"
    previous.write_text(json.dumps({"rows": [], "tasks": old}))
    assert merged_task_cells(previous, []) == [old[2], old[1], old[0]]  # task order, then model
    fresh = {"task": first, "model": "neuript", "test": {"balanced_accuracy": 0.7}}
    merged = merged_task_cells(previous, [fresh])
    assert [c["test"]["balanced_accuracy"] for c in merged] == [0.6, 0.7, 0.4]
    assert merged_task_cells(tmp_path / "missing.json", [fresh]) == [fresh]


def test_a_code_version_bump_drops_every_cached_cell(tmp_path, monkeypatch):
    """Cells made by older code stop counting once CELL_CODE_VERSION says the code changed."""
    import benchmarks.bench_recipe as br
    from benchmarks.common import BenchOptions

    opts = BenchOptions(out_dir=tmp_path / "results", work_dir=tmp_path / "work")
    br.write_store(opts, {br.REFERENCE: [_cell(br.REFERENCE, 0, 0, 0.6)],
                          "logstd": [_cell("logstd", 0, 0, 0.7)]})
    assert set(br.cached_cells(opts)) == {br.REFERENCE, "logstd"}
    monkeypatch.setattr(br, "CELL_CODE_VERSION", br.CELL_CODE_VERSION + 1)
    assert br.cached_cells(opts) == {}


def test_targets_pair_matched_cells_and_say_not_met():
    """Issue 11's targets: the default vs band power paired by fold (band power has one seed),
    a carried row without cells compared by its mean, a claim without both rows left out."""
    from benchmarks.bench_recipe import DEFAULT, REFERENCE, target_rows

    def row(name, per_cell, mean=None):
        vals = [v for _, _, v in per_cell]
        return {"variant": name, "per_cell": per_cell,
                "balanced_accuracy_mean": mean if mean is not None else sum(vals) / len(vals)}

    rows = [row(DEFAULT, [[0, 0, 0.60], [0, 1, 0.64], [1, 0, 0.70]]),
            row(REFERENCE, [[0, 0, 0.65], [1, 0, 0.66]]),
            row("shallowconvnet", [], mean=0.60)]
    lines = target_rows(rows)
    assert len(lines) == 2
    bandpower, shallow = lines
    # diffs -0.05, -0.01 (fold 0, both seeds against the one band-power cell), +0.04 → -0.7
    assert "-0.7 [" in bandpower[2] and "(3 cells)" in bandpower[2]
    assert bandpower[3] == "**not met**"
    assert "unpaired" in shallow[2] and shallow[3] == "**met**"  # 64.7 vs 60.0


def test_shortfall_names_the_best_scratch_row_on_the_paper_input():
    """Only from-scratch rows without subject normalisation over all six folds compete; the
    sentence says the target is missed only while the best of them trails both baselines."""
    from benchmarks.bench_recipe import REFERENCE, shortfall_lines

    def row(name, value, model="neuript", folds=6, **over):
        return {"variant": name, "model": model, "overrides": over, "folds": list(range(folds)),
                "cells": folds, "balanced_accuracy_mean": value, "auroc_mean": value + 0.08,
                "per_cell": [[k, 0, value] for k in range(folds)]}

    rows = [row(REFERENCE, 0.66, model="bandpower_lr"), row("shallowconvnet", 0.68,
                                                             model="shallowconvnet"),
            row("a", 0.62), row("b", 0.64), row("screen", 0.90, folds=3),
            row("spec", 0.80, subject_norm="spectral"), row("init", 0.85, init="neuript-small")]
    text = shortfall_lines(rows)[0]
    assert text.startswith("Of the 2 from-scratch") and "`b`, reaches 64.0" in text
    assert "-2.0 [" in text and "-4.0 [" in text and "No recipe change" in text
    assert "`b` 72.0 vs 64.0, band power 74.0 vs 66.0" in text
    rows.append(row("c", 0.70))
    text = shortfall_lines(rows)[0]
    assert "`c`, reaches 70.0" in text and "No recipe change" not in text


def test_learning_curve_thins_only_the_training_subjects(task):
    """The curve's rows train on the first n training subjects; validation and test keep every
    window, and the thinned task is the same windows as the original's."""
    import numpy as np

    from neuript.data.splits import subset_subjects

    train = sorted(set(task.subjects[task.indices("train")].tolist()))
    assert len(train) >= 2
    few = subset_subjects(task, 1, splits=("train",))
    assert sorted(set(few.subjects[few.indices("train")].tolist())) == train[:1]
    for split in ("val", "test"):
        np.testing.assert_array_equal(few.signals[few.indices(split)],
                                      task.signals[task.indices(split)])
    kept = task.indices("train")[task.subjects[task.indices("train")] == train[0]]
    np.testing.assert_array_equal(few.signals[few.indices("train")], task.signals[kept])


def test_learning_curve_section_pairs_each_size_with_its_rows():
    """One line per size whose three rows exist (24 = the full rows), gaps paired by fold."""
    from benchmarks.bench_recipe import CURVE_ROWS, curve_markdown

    def row(name, vals):
        return {"variant": name, "cells": len(vals), "per_cell": [[k, 0, v] for k, v in
                                                                   enumerate(vals)],
                "balanced_accuracy_mean": sum(vals) / len(vals)}

    band, scratch, small = CURVE_ROWS
    rows = [row(f"{band}_n6", [0.70, 0.72]), row(f"{scratch}_n6", [0.60, 0.66]),
            row(f"{small}_n6", [0.70, 0.70]), row(band, [0.80, 0.80]),
            row(scratch, [0.70, 0.70])]  # no full-data pretrained row: 24 is left out
    text = "\n".join(curve_markdown(rows))
    lines = [line for line in text.splitlines() if line.startswith("| 6 ")]
    assert len(lines) == 1 and "| 24 " not in text
    cells = [c.strip() for c in lines[0].strip("|").split("|")]
    assert cells[1:4] == ["71.0 (2)", "63.0 (2)", "70.0 (2)"]
    assert cells[4].startswith("-8.0") and cells[5].startswith("-1.0")
    assert cells[6].startswith("+7.0")
    assert curve_markdown([row(band, [0.8])]) == []
    rows.append(row(small, [0.75, 0.77]))  # now 24 has its three rows: a trend line
    text = "\n".join(curve_markdown(rows))
    assert "from -8.0 points at 6 training subjects to -10.0 at 24" in text
