"""Tasks whose recordings share no channel: each keeps its own (``montage="per_recording"``).

Real EEGMAT recordings (rest ``_1`` / task ``_2``), each subject given a different three-channel
subset, so no channel name is common to all. Checked: the refusal without the mode names it;
windows equal the recording's own preprocessing and are zero elsewhere; every batch holds one
channel set with its own positions and lobes; a NeurIPT model trains on them and predicts a
recording with a montage it never saw, equal to the task's own test predictions on a seen one.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from _byod_data import eegmat, micro_config, read_raw
from neuript.data.preprocess import preprocess_continuous
from neuript.data.recording import Recording
from neuript.data.tasks.arrays import build_array_task
from neuript.errors import ChannelError, ContractError, NeuriptError

SECONDS = 24.0
MONTAGES = {  # no name shared by all; frontal/central/parietal/occipital lobes spread out
    "Subject00": ("Fp1", "F3", "C3"), "Subject01": ("Cz", "P4", "O2"),
    "Subject02": ("Fp1", "F3", "C3"), "Subject03": ("Cz", "P4", "O2"),
    "Subject04": ("F4", "C4", "Pz"), "Subject05": ("Cz", "P4", "O2"),
}
SPLIT = {"Subject00": "train", "Subject01": "train", "Subject02": "train",
         "Subject03": "train", "Subject04": "val", "Subject05": "test"}


def _recording(subject: str, run: int, channels: tuple[str, ...]) -> Recording:
    raw = read_raw(eegmat(f"{subject}_{run}.edf"))
    stop = int(SECONDS * raw.info["sfreq"])
    data = raw.get_data(picks=[f"EEG {c}" for c in channels])[:, :stop]
    return Recording.from_array(data, raw.info["sfreq"], list(channels), unit="V",
                                subject=subject, source=f"{subject}_{run}")


@pytest.fixture(scope="module")
def items():
    return [{"recording": _recording(s, run, chans), "label": label, "subject": s,
             "split": SPLIT[s]}
            for s, chans in MONTAGES.items() for run, label in ((1, "rest"), (2, "task"))]


@pytest.fixture(scope="module")
def mixed(items):
    return build_array_task(items, window_s=4.0, montage="per_recording", split="column")


def test_no_shared_channel_is_refused_with_a_hint_naming_the_mode(items):
    with pytest.raises(NeuriptError, match="share no channel.*per_recording"):
        build_array_task(items, window_s=4.0, split="column")


def test_a_recording_with_nothing_placeable_and_a_name_placed_twice_are_named(items):
    """Under ``per_recording`` a recording whose only channel has no name or position is
    refused by name, and so is a custom electrode two recordings put in different places."""
    rec = items[0]["recording"]
    custom_only = Recording.from_array(rec.data[:1], rec.sfreq_hz, ["X1"], unit="V",
                                       subject="Subject00", source="custom_only")
    with pytest.raises(NeuriptError, match=r"custom_only: unknown channel.*\n.*custom_only: "
                                           "no channel has a known name or a position"):
        build_array_task([{**items[0], "recording": custom_only}, *items[1:]], window_s=4.0,
                         montage="per_recording", split="column")

    def with_x1(item, position):
        r = item["recording"]
        return {**item, "recording": Recording.from_array(
            np.concatenate([r.data, r.data[:1]]), r.sfreq_hz, [*r.ch_names, "X1"], unit="V",
            subject=item["subject"], source=r.source, positions={"X1": position})}

    placed = {"Subject00": (0.0, 0.05, 0.08), "Subject01": (0.0, -0.05, 0.08)}
    moved = [with_x1(it, placed[it["subject"]]) if it["subject"] in placed else it
             for it in items]
    with pytest.raises(NeuriptError, match=r"'X1' is at \[0.0, 0.05, 0.08\] m in Subject00_1 "
                                           r"and at \[0.0, -0.05, 0.08\] m in Subject01_1"):
        build_array_task(moved, window_s=4.0, montage="per_recording", split="column")


def test_windows_keep_each_recordings_channels_and_values(mixed, items):
    task = mixed
    union = ("Fp1", "F3", "C3", "Cz", "P4", "O2", "F4", "C4", "Pz")
    assert task.ch_names == union and task.mixed_montage
    assert task.signals.shape == (len(items) * 6, len(union), 256)
    sets, montage_of = task.montages()
    assert [tuple(np.asarray(union)[row]) for row in sets] == [
        ("Fp1", "F3", "C3"), ("Cz", "P4", "O2"), ("F4", "C4", "Pz")]
    for item in items:
        rec, rows = item["recording"], np.flatnonzero(task.sources == item["recording"].source)
        own = [union.index(c) for c in MONTAGES[item["subject"]]]
        assert task.present[rows][:, own].all() and task.present[rows].sum() == len(rows) * 3
        assert not np.any(np.delete(task.signals[rows], own, axis=1))  # zeros elsewhere
        cont = preprocess_continuous(rec, task.preprocess, target="monopolar")
        assert cont.ch_names == MONTAGES[item["subject"]]
        start = int(task.starts[rows[2]])
        np.testing.assert_allclose(task.signals[rows[2]][own], cont.data[:, start:start + 256],
                                   rtol=1e-5, atol=1e-4)
    assert "each recording keeps its own channels (3 channel set(s), 9 channels" in task.protocol
    # subsetting keeps the mask with its windows
    sub = task.take(np.flatnonzero(task.subjects == "Subject01"))
    assert sub.present.shape == (12, 9) and sub.montages()[0].shape == (1, 9)


def test_batches_hold_one_channel_set_with_its_positions_and_lobes(mixed):
    from neuript.data.loader import make_task_loader
    from neuript.data.montage import pooling_groups

    names = pooling_groups(list(mixed.ch_names), mixed.positions, "functional").names
    seen = set()
    for batch in make_task_loader(mixed, "train", batch_size=5, shuffle=True, seed=0):
        rows = batch.window_ids.numpy()
        own = mixed.present[rows[0]]
        assert (mixed.present[rows] == own).all()  # one channel set per batch
        assert batch.signals.shape[1] == own.sum() == 3 and batch.channel_mask.all()
        np.testing.assert_allclose(batch.positions[0].numpy(), mixed.positions[own])
        assert batch.group_mask.shape[1] == len(names)
        channels = tuple(np.asarray(mixed.ch_names)[own])
        mine = pooling_groups(list(channels), mixed.positions[own], "functional")
        for g, name in enumerate(names):  # lobes this set lacks are empty rows
            expect = mine.mask[mine.names.index(name)] if name in mine.names else np.zeros(3)
            assert (batch.group_mask[0, g].numpy() == expect).all(), (channels, name)
        seen.add(channels)
    assert seen == {("Fp1", "F3", "C3"), ("Cz", "P4", "O2")}


def test_groups_as_refuses_a_lobe_the_model_lacks():
    from neuript.data.montage import electrode_positions, groups_as

    pos = np.asarray([electrode_positions()[c] for c in ("Fp1", "O2")], np.float32)
    mask = groups_as(["Fp1", "O2"], pos, "functional", ("Occipital", "Temporal-L", "Frontal"))
    assert mask.tolist() == [[False, True], [False, False], [True, False]]
    with pytest.raises(ChannelError, match=r"pooling group\(s\) \['Occipital'\]"):
        groups_as(["Fp1", "O2"], pos, "functional", ("Frontal",))


def test_baselines_are_refused_on_a_mixed_task(mixed, tmp_path):
    from neuript.train.finetune import run_finetune

    with pytest.raises(NeuriptError, match="per_recording.*--model neuript"):
        run_finetune(micro_config(tmp_path / "run", model="bandpower_lr"), task=mixed)
    assert not (tmp_path / "run").exists()


def test_a_mixed_model_predicts_seen_and_unseen_montages(mixed, tmp_path):
    from neuript.predict import run_predict
    from neuript.train.finetune import run_finetune

    torch.set_num_threads(1)
    result = run_finetune(micro_config(tmp_path / "run"), task=mixed)
    model_dir = result.run_dir / "seed_0" / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["contract"]["any_montage"] is True and config["contract"]["channels"] == []
    # a test recording through predict = the task's own test predictions for it
    test = pd.read_csv(result.run_dir / "seed_0" / "test_predictions.csv")
    seen = _recording("Subject05", 2, MONTAGES["Subject05"])
    pred = run_predict(seen, model_dir, device="cpu").rows
    mine = test[test.source == "Subject05_2"].sort_values("start")
    np.testing.assert_allclose(pred["p_task"].to_numpy(), mine["p_task"].to_numpy(), atol=2e-5)
    # a montage no training recording had, within the lobes the model knows
    unseen = _recording("Subject05", 1, ("Fz", "P3", "O1"))
    rows = run_predict(unseen, model_dir, device="cpu").rows
    assert len(rows) == 6 and np.isfinite(rows[["p_rest", "p_task"]].to_numpy()).all()
    np.testing.assert_allclose(rows[["p_rest", "p_task"]].sum(axis=1), 1.0, atol=1e-5)
    # the live-stream path (neuript stream) takes the unseen montage too
    from neuript.online import offline_equivalent

    online = offline_equivalent(unseen, model_dir)
    assert len(online) >= 1 and np.isfinite(online[["p_rest", "p_task"]].to_numpy()).all()
    # temporal electrodes: a lobe no training montage reached, so the head has no weights
    with pytest.raises(ContractError, match="Subject05_1: channels in pooling group.*Temporal"):
        run_predict(_recording("Subject05", 1, ("T3", "T4", "P3")), model_dir, device="cpu")
