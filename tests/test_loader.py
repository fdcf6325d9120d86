"""Batches: one montage each, A-law applied, deterministic, DDP slices that add up."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuript.config import PreprocessConfig
from neuript.data.loader import MontageBatchSampler, make_corpus_loader, make_task_loader
from neuript.data.montage import pooling_groups
from neuript.data.preprocess import alaw
from neuript.data.splits import split_by_subject
from neuript.data.store import WindowStore, prepare_corpus
from neuript.data.tasks.base import TaskWindows
from neuript.paths import data_root

torch.set_num_threads(1)
CFG = PreprocessConfig(montage="monopolar", reject_abs_uv=1000.0)  # ADHD peaks near 1 mV


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> WindowStore:
    """A real two-montage corpus: two ADHD children (19 ch) and one Muse session (4 ch)."""
    root = data_root()
    files = [root / "adhd" / "control" / "v51p.csv.gz", root / "adhd" / "adhd" / "v37p.csv.gz",
             root / "muse" / "visual" / "P300" / "subject4" / "session1"
             / "data_2018-04-22-21.41.19.csv.gz"]
    if not all(f.exists() for f in files):
        pytest.skip("real data missing")
    out = tmp_path_factory.mktemp("corpus")
    prepare_corpus(files, out, CFG, workers=1, progress=False)
    return WindowStore(out)


def _alaw_reference(x: torch.Tensor, a: float) -> torch.Tensor:
    """NEURIPT_SPEC §1, written out: linear below 1/A, logarithmic above."""
    ax = (a * x.double()).abs()
    y = torch.where(ax < 1, ax, 1 + torch.log(ax.clamp(min=1))) / (np.e + np.log(a))
    return (torch.sign(x) * y).float()


def _batches(loader) -> list:
    return list(loader)


def test_corpus_batches_one_montage_alaw_positions(store: WindowStore) -> None:
    assert len(store.montages) == 2
    loader = make_corpus_loader(store, np.arange(len(store)), batch_size=8, seed=3,
                                drop_last=False, alaw_a=0.25)
    seen = []
    for batch in loader:
        ids = batch.window_ids.numpy()
        (montage,) = set(store.montage_of[ids].tolist())
        names, positions = store.montages[montage]
        raw = torch.from_numpy(store.windows(ids))
        torch.testing.assert_close(batch.signals, alaw(raw, 0.25))
        torch.testing.assert_close(batch.signals, _alaw_reference(raw, 0.25))
        assert batch.positions.shape == (len(ids), len(names), 3)
        torch.testing.assert_close(batch.positions, torch.from_numpy(positions).expand(
            len(ids), -1, -1))
        assert batch.channel_mask.all() and batch.labels is None
        assert batch.group_mask.shape == (len(ids), 1, len(names))  # scheme "mean"
        seen += ids.tolist()
    assert sorted(seen) == list(range(len(store)))  # every window once per epoch


def test_no_compression_passes_microvolts(store: WindowStore) -> None:
    batch = next(iter(make_corpus_loader(store, np.arange(len(store)), batch_size=4, seed=0,
                                         compression="none")))
    np.testing.assert_array_equal(batch.signals.numpy(), store.windows(batch.window_ids.numpy()))


@pytest.mark.parametrize("drop_last", [True, False])
def test_two_ranks_equal_one_rank_with_double_batch(store: WindowStore, drop_last: bool) -> None:
    idx = np.arange(len(store))
    kw = dict(seed=7, compression="none", drop_last=drop_last, epoch=2)
    single = _batches(make_corpus_loader(store, idx, batch_size=6, **kw))
    ranks = [_batches(make_corpus_loader(store, idx, batch_size=3, rank=r, world_size=2, **kw))
             for r in range(2)]
    assert len(single) == len(ranks[0]) == len(ranks[1])
    for whole, a, b in zip(single, *ranks):
        assert set(a.window_ids.tolist()).isdisjoint(b.window_ids.tolist())
        assert sorted(whole.window_ids.tolist()) == sorted(a.window_ids.tolist()
                                                           + b.window_ids.tolist())
        if drop_last:
            assert len(a) == len(b) == 3
    assert len(single) == len(make_corpus_loader(store, idx, batch_size=6, **kw).batch_sampler)


def test_sampler_is_deterministic_per_seed_and_epoch() -> None:
    montage_of = np.repeat([0, 1, 2], [50, 30, 21])

    def order(seed: int, epoch: int) -> list[list[int]]:
        return list(MontageBatchSampler(montage_of, 8, shuffle=True, seed=seed, epoch=epoch))

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1) and order(1, 0) != order(2, 0)
    sampler = MontageBatchSampler(montage_of, 8, shuffle=True, seed=1)
    sampler.set_epoch(1)
    assert list(sampler) == order(1, 1)
    for batch in order(1, 0):
        assert len(set(montage_of[batch])) == 1
    flat = sorted(sum(order(1, 0), []))
    assert flat == list(range(len(montage_of)))
    # tiny last batch and more ranks than windows in it: every rank still gets a step
    ranks = [list(MontageBatchSampler(np.zeros(5, int), 2, shuffle=False, seed=0, rank=r,
                                      world_size=3)) for r in range(3)]
    assert all(len(r) == 1 for r in ranks)
    assert sorted(sum((r[0] for r in ranks), [])) == [0, 1, 2, 3, 4]


def test_task_loader_labels_groups_and_order(store: WindowStore) -> None:
    m = int(np.bincount(store.montage_of).argmax())  # the 19-channel montage
    idx = np.flatnonzero(store.montage_of == m)
    names, positions = store.montages[m]
    n = len(idx)
    labels = np.arange(n) % 2
    splits = np.array(["train", "val", "test"])[np.arange(n) % 3]
    task = TaskWindows(
        name="toy", signals=store.windows(idx), labels=labels, subjects=store.subjects[idx],
        splits=splits, sources=store.sources[idx], starts=store.starts[idx], ch_names=names,
        positions=positions, class_names=("a", "b"), preprocess=CFG)
    loader = make_task_loader(task, "val", batch_size=5, shuffle=False, seed=0)
    batches = list(loader)
    ids = torch.cat([b.window_ids for b in batches]).numpy()
    np.testing.assert_array_equal(ids, task.indices("val"))  # unshuffled: split order
    np.testing.assert_array_equal(torch.cat([b.labels for b in batches]).numpy(), labels[ids])
    groups = pooling_groups(list(names), positions, "functional")
    assert batches[0].group_mask.shape == (5, len(groups.names), len(names))
    np.testing.assert_array_equal(batches[0].group_mask[0].numpy(), groups.mask)
    torch.testing.assert_close(batches[0].signals, alaw(torch.from_numpy(
        task.signals[ids[:5]]), CFG.alaw_a))


def test_split_by_subject(store: WindowStore) -> None:
    split = split_by_subject(store.subjects, 0.34, seed=0)
    train_subj, val_subj = set(store.subjects[split.train]), set(store.subjects[split.val])
    assert train_subj.isdisjoint(val_subj) and len(val_subj) == 1 and len(train_subj) == 2
    assert sorted(np.concatenate(split)) == list(range(len(store)))
    again = split_by_subject(store.subjects, 0.34, seed=0)
    np.testing.assert_array_equal(split.val, again.val)
