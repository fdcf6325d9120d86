"""The shipped ``neuript-small`` checkpoint: found by name offline, loads strictly, has its card,
and its recorded corpus keeps it off the tasks whose test subjects it saw."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from neuript.data.io import guess_subject_session
from neuript.errors import NeuriptError
from neuript.model.neuript import NeurIPTClassifier, NeurIPTPretrain
from neuript.model_folder import resolve_init_dir
from neuript.paths import data_root
from neuript.train.provenance import check_overlap, checkpoint_provenance
from neuript.weights import WEIGHTS_DIR, bundled_checkpoint

SHIPPED = WEIGHTS_DIR / "neuript-small"


def test_name_resolves_inside_the_package_and_loads_strictly():
    assert resolve_init_dir("neuript-small") == SHIPPED == bundled_checkpoint("neuript-small")
    assert (SHIPPED / "model.safetensors").stat().st_size <= 2_000_000
    pre, meta = NeurIPTPretrain.from_pretrained("neuript-small")  # strict: every key present
    assert meta.report.ok and pre.cfg.decoder_stride == 8 and pre.cfg.d_model == 32
    clf, _ = NeurIPTClassifier.from_pretrained("neuript-small", n_classes=2)
    name = next(n for n, _ in clf.named_parameters() if n.startswith("encoder.blocks.0"))
    torch.testing.assert_close(dict(clf.named_parameters())[name],
                               dict(pre.named_parameters())[name])


def test_model_card_numbers_come_from_the_run():
    card = json.loads((SHIPPED / "card.json").read_text())
    text = (SHIPPED / "MODEL_CARD.md").read_text()
    assert card["steps"] > 0 and np.isfinite(card["val_recon_loss"])
    assert card["corpus"]["datasets"] == ["adhd", "eegmmidb", "muse"]
    assert f"{card['val_recon_loss']:.4f}" in text and card["corpus"]["manifest_sha256"] in text
    # a probe at every kept checkpoint, beside the random encoder
    assert card["probes"][0]["init"] == "random encoder" and len(card["probes"]) >= 3
    assert card["command"].startswith("python -m benchmarks.build_checkpoint")


def test_its_corpus_holds_adhd_but_never_eegmat():
    prov = checkpoint_provenance(SHIPPED)
    assert prov["windows"] > 0 and len(prov["subjects"]) > 100
    assert not any(s.startswith("Subject") for s in prov["subjects"])  # EEGMAT ids
    files = sorted((data_root() / "adhd").rglob("*.csv.gz"))[:2]
    if not files:
        pytest.skip("bundled ADHD data not found")
    subjects = [guess_subject_session(f)[0] for f in files]
    task = SimpleNamespace(name="adhd", sources=np.array([str(f) for f in files]),
                           subjects=np.array(subjects), splits=np.array(["test", "train"]))
    with pytest.raises(NeuriptError, match=rf"{subjects[0]}.*--allow-overlap"):
        check_overlap(prov, task, "neuript-small", allow=False)
    eegmat = SimpleNamespace(name="mental_arithmetic",
                             sources=np.array(["x/eegmat/Subject33_1.edf"]),
                             subjects=np.array(["Subject33"]), splits=np.array(["test"]))
    assert check_overlap(prov, eegmat, "neuript-small", allow=False)["status"] == "clean"
