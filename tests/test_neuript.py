"""NeurIPTPretrain and NeurIPTClassifier: leakage, loss, invariances, checkpoints, ONNX."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from _real_eeg import eegmat_batch
from neuript.config import InputContract, MaskConfig
from neuript.errors import ContractError
from neuript.model import io as ckpt_io
from neuript.model.export import DenseRoutedMoE, export_onnx, exportable_copy
from neuript.model.masking import make_mask
from neuript.model.neuript import NeurIPTClassifier, NeurIPTPretrain
from neuript.model.presets import preset

torch.set_num_threads(1)
GROUPS = ("frontal", "central_parietal", "occipital", "temporal_left", "temporal_right")


def _cfg(**changes):
    return dataclasses.replace(preset("tiny"), dropout=0.0, **changes)


def _group_mask(names: tuple[str, ...], b: int) -> torch.Tensor:
    """Crude lobes by the first letters of 10-20 names (enough for invariance tests)."""
    rules = {
        "frontal": lambda n: n.startswith("F"),
        "central_parietal": lambda n: n.startswith(("C", "P")),
        "occipital": lambda n: n.startswith("O"),
        "temporal_left": lambda n: n in ("T3", "T5", "F7"),
        "temporal_right": lambda n: n in ("T4", "T6", "F8"),
    }
    mask = torch.tensor([[rules[g](n) for n in names] for g in GROUPS])
    return mask.expand(b, -1, -1).clone()


NAMES_19 = ("Fp1", "Fp2", "F3", "F4", "F7", "F8", "T3", "T4", "C3", "C4", "T5", "T6", "P3",
            "P4", "O1", "O2", "Fz", "Cz", "Pz")


@pytest.fixture(scope="module")
def real():
    signals, positions, channel_mask = eegmat_batch(n_windows=2, n_channels=19)
    return signals[..., :64].contiguous(), positions, channel_mask


# ---- pretraining -------------------------------------------------------------------------
@pytest.mark.parametrize("replace_mask, replace_random", [(1.0, 0.0), (0.5, 0.5)])
def test_true_masked_values_never_reach_encoder_or_decoder(real, replace_mask, replace_random):
    signals, positions, channel_mask = real
    torch.manual_seed(0)
    model = NeurIPTPretrain(_cfg(), MaskConfig(replace_mask=replace_mask,
                                               replace_random=replace_random)).eval()
    spec = make_mask(signals, model.mask_cfg, torch.Generator().manual_seed(1), channel_mask)
    altered = torch.where(spec.mask, signals + torch.randn_like(signals) * 3.0, signals)

    def run(x):
        gen = torch.Generator().manual_seed(2)
        tokens = model.apply_mask(model.embed(x), spec, channel_mask, gen)
        encoded = model.encode(tokens, positions, channel_mask, spec)
        decoded = model.decode(model.embed(x), spec, positions, channel_mask, encoded)
        return encoded, decoded

    enc_a, dec_a = run(signals)
    enc_b, dec_b = run(altered)
    for level_a, level_b in zip(enc_a.levels, enc_b.levels):
        torch.testing.assert_close(level_a, level_b, rtol=0, atol=1e-5)
    torch.testing.assert_close(dec_a.pred, dec_b.pred, rtol=0, atol=1e-5)
    # sanity: the same change on visible samples does change the encoder output
    visible_change = torch.where(~spec.mask, signals + 1.0, signals)
    enc_c, _ = run(visible_change)
    assert (enc_c.levels[-1] - enc_a.levels[-1]).abs().max() > 1e-3


def test_keep_share_does_leak_as_documented(real):
    signals, positions, channel_mask = real
    model = NeurIPTPretrain(_cfg(), MaskConfig(replace_mask=0.0, replace_random=0.0)).eval()
    spec = make_mask(signals, model.mask_cfg, torch.Generator().manual_seed(1), channel_mask)
    altered = torch.where(spec.mask, signals + 1.0, signals)
    a = model(signals, positions, channel_mask, mask=spec).pred
    b = model(altered, positions, channel_mask, mask=spec).pred
    assert (a - b).abs().max() > 1e-3


def test_loss_only_on_masked_positions(real):
    signals, positions, channel_mask = real
    model = NeurIPTPretrain(_cfg(), MaskConfig(loss_p=2.0)).eval()
    spec = make_mask(signals, model.mask_cfg, torch.Generator().manual_seed(0), channel_mask)
    out = model(signals, positions, channel_mask, mask=spec)
    loss = model.reconstruction_loss(out.pred, signals, spec.mask, channel_mask)
    moved = torch.where(spec.mask, out.pred, out.pred + 10.0)
    torch.testing.assert_close(model.reconstruction_loss(moved, signals, spec.mask, channel_mask),
                               loss)
    expected = ((out.pred - signals)[spec.mask] ** 2).mean()
    torch.testing.assert_close(out.recon_loss, expected)
    torch.testing.assert_close(out.loss, out.recon_loss + 0.8 * out.aux_loss)
    assert torch.equal(out.mask, spec.mask)


def test_every_parameter_gets_a_finite_gradient(real):
    signals, positions, channel_mask = real
    model = NeurIPTPretrain(_cfg(), MaskConfig())
    out = model(signals, positions, channel_mask, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_pretrain_loss_falls_on_one_real_batch():
    signals, positions, channel_mask = eegmat_batch(n_windows=2, n_channels=6)
    torch.manual_seed(0)
    model = NeurIPTPretrain(_cfg(), MaskConfig())
    optim = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        out = model(signals, positions, channel_mask, generator=torch.Generator().manual_seed(0))
        optim.zero_grad()
        out.loss.backward()
        optim.step()
        losses.append(out.recon_loss.item())
    assert all(np.isfinite(losses))
    assert min(losses[-5:]) < 0.5 * losses[0], losses
    zero_prediction = (signals[out.mask] ** 2).mean().item()  # predicting 0 everywhere
    assert min(losses[-5:]) < 0.5 * zero_prediction, (losses, zero_prediction)


# ---- classifier invariances --------------------------------------------------------------
def test_channel_permutation_with_positions_leaves_logits(real):
    signals, positions, channel_mask = real
    torch.manual_seed(0)
    model = NeurIPTClassifier(_cfg(), 3, GROUPS).eval()
    groups = _group_mask(NAMES_19, 2)
    perm = torch.randperm(19, generator=torch.Generator().manual_seed(4))
    ref = model(signals, positions, channel_mask, groups)
    out = model(signals[:, perm], positions[:, perm], channel_mask[:, perm], groups[..., perm])
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.features, ref.features, rtol=1e-4, atol=1e-5)


def test_padded_channels_leave_logits(real):
    signals, positions, channel_mask = real
    model = NeurIPTClassifier(_cfg(), 2, GROUPS).eval()
    groups = _group_mask(NAMES_19, 2)
    ref = model(signals, positions, channel_mask, groups)
    pad = 3
    padded_signals = torch.cat([signals, torch.randn(2, pad, 64) * 5], dim=1)
    padded_pos = torch.cat([positions, torch.randn(2, pad, 3)], dim=1)
    padded_mask = torch.cat([channel_mask, torch.zeros(2, pad, dtype=torch.bool)], dim=1)
    padded_groups = torch.cat([groups, torch.ones(2, len(GROUPS), pad, dtype=torch.bool)], dim=2)
    out = model(padded_signals, padded_pos, padded_mask, padded_groups)
    torch.testing.assert_close(out.logits, ref.logits, rtol=1e-4, atol=1e-5)


def test_finetune_api():
    cfg = _cfg()
    model = NeurIPTClassifier(cfg, 2, GROUPS)
    groups = model.layer_groups()
    assert len(groups) == cfg.depth + 2
    assert groups[0][0].startswith("embedding.") and all(n.startswith("head.") for n in groups[-1])
    assert sorted(sum(groups, [])) == sorted(n for n, _ in model.named_parameters())
    exempt = model.no_weight_decay()
    assert "embedding.proj.bias" in exempt and "embedding.proj.weight" not in exempt
    assert any("norm" in n for n in exempt)
    model.freeze_encoder(True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("head.") for n in trainable)
    model.freeze_encoder(False)
    model.reset_head(5)
    assert model.head.forward_head(torch.randn(1, model.head.n_features)).shape == (1, 5)
    assert "mask_token" in NeurIPTPretrain(cfg).no_weight_decay()


# ---- checkpoints -------------------------------------------------------------------------
def test_save_load_gives_identical_outputs(tmp_path, real):
    signals, positions, channel_mask = real
    torch.manual_seed(0)
    contract = InputContract(channels=NAMES_19)
    pre = NeurIPTPretrain(_cfg(), MaskConfig()).eval()
    pre.save_pretrained(tmp_path / "pre", contract, extra={"step": 7})
    pre2, meta = NeurIPTPretrain.from_pretrained(tmp_path / "pre")
    assert meta.kind == "pretrain" and meta.report.ok and meta.extra == {"step": 7}
    assert meta.contract == contract and meta.mask == pre.mask_cfg and meta.model == pre.cfg
    a = pre(signals, positions, channel_mask, generator=torch.Generator().manual_seed(3))
    b = pre2(signals, positions, channel_mask, generator=torch.Generator().manual_seed(3))
    assert a.loss.item() == b.loss.item()

    clf = NeurIPTClassifier(_cfg(), 2, GROUPS).eval()
    clf.save_pretrained(tmp_path / "clf", contract, extra={"class_names": ["rest", "task"]})
    clf2, meta = NeurIPTClassifier.from_pretrained(tmp_path / "clf")
    assert meta.head["class_names"] == ["rest", "task"] and clf2.group_names == GROUPS
    groups = _group_mask(NAMES_19, 2)
    assert torch.equal(clf(signals, positions, channel_mask, groups).logits,
                       clf2(signals, positions, channel_mask, groups).logits)
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["kind"] == "classifier" and config["contract"]["channels"] == list(NAMES_19)
    assert "neuript_version" in config


def test_missing_keys_refused_by_default_and_reported_when_partial(tmp_path):
    model = NeurIPTPretrain(_cfg())
    model.save_pretrained(tmp_path / "ck", InputContract())
    weights = load_file(str(tmp_path / "ck" / "model.safetensors"))
    dropped = "decoder.layers.0.predict.weight"
    del weights[dropped]
    weights["decoder.extra_thing"] = torch.zeros(2)
    save_file(weights, str(tmp_path / "ck" / "model.safetensors"))
    with pytest.raises(ContractError, match=r"ck: weights do not match the model: missing "
                       r"\['decoder.layers.0.predict.weight'\], unexpected \['decoder.extra"):
        NeurIPTPretrain.from_pretrained(tmp_path / "ck")  # strict unless asked otherwise
    _, meta = NeurIPTPretrain.from_pretrained(tmp_path / "ck", strict=False)
    assert meta.report.missing == (dropped,)
    assert meta.report.unexpected == ("decoder.extra_thing",)


def test_load_encoder_copies_weights_and_checks_shapes(tmp_path):
    pre = NeurIPTPretrain(_cfg())
    pre.save_pretrained(tmp_path / "pre", InputContract())
    clf = NeurIPTClassifier(_cfg(), 2, GROUPS)
    report = clf.load_encoder(tmp_path / "pre")
    assert report.ok
    pre_state = pre.state_dict()
    for name, tensor in clf.state_dict().items():
        if name.startswith(("embedding.", "encoder.")):
            assert torch.equal(tensor, pre_state[name]), name
    wide = NeurIPTClassifier(_cfg(d_model=48), 2, GROUPS)
    with pytest.raises(ContractError, match=r"tensor 'embedding\.proj\.\w+' has shape \(32.*\(48"):
        wide.load_encoder(tmp_path / "pre")


def test_wrong_kind_and_bad_config_name_the_dir(tmp_path):
    pre = NeurIPTPretrain(_cfg())
    pre.save_pretrained(tmp_path / "pre", InputContract())
    with pytest.raises(ContractError, match=r"pre: a pretraining checkpoint has no classifier "
                       r"head; pass n_classes="):
        NeurIPTClassifier.from_pretrained(tmp_path / "pre")
    # with n_classes: the pretrained encoder under a fresh head over the functional lobes
    clf, _ = NeurIPTClassifier.from_pretrained(tmp_path / "pre", n_classes=3)
    assert clf.n_classes == 3 and len(clf.group_names) == 5
    name = next(n for n, _ in clf.named_parameters() if n.startswith("encoder."))
    torch.testing.assert_close(dict(clf.named_parameters())[name],
                               dict(pre.named_parameters())[name])
    config_path = tmp_path / "pre" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["d_modell"] = 3
    config_path.write_text(json.dumps(config))
    with pytest.raises(ContractError, match=str(tmp_path / "pre")):
        NeurIPTPretrain.from_pretrained(tmp_path / "pre")
    with pytest.raises(ContractError, match="not a neuript checkpoint"):
        NeurIPTPretrain.from_pretrained(tmp_path / "nothing")


def test_save_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "ck"
    first = NeurIPTPretrain(_cfg())
    first.save_pretrained(target, InputContract(), extra={"v": 1})
    NeurIPTPretrain(_cfg()).save_pretrained(target, InputContract(), extra={"v": 2})
    assert json.loads((target / "config.json").read_text())["extra"] == {"v": 2}
    before = (target / "model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_io, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        first.save_pretrained(target, InputContract(), extra={"v": 3})
    assert (target / "model.safetensors").read_bytes() == before
    assert json.loads((target / "config.json").read_text())["extra"] == {"v": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_onnx_matches_torch(tmp_path, real):
    ort = pytest.importorskip("onnxruntime")
    signals, positions, channel_mask = real
    torch.manual_seed(0)
    model = NeurIPTClassifier(_cfg(), 2, GROUPS).eval()
    path = export_onnx(model, tmp_path / "m.onnx", n_channels=19, n_samples=64,
                               n_groups=len(GROUPS))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    groups = _group_mask(NAMES_19, 2)
    three = torch.cat([signals, signals[:1] * 0.3])  # another batch size: the axis is dynamic
    for batch in (signals, signals.flip(0) * 0.5, three):  # inputs unlike the export example
        b = batch.shape[0]
        pos, cm, gm = positions[:1].expand(b, -1, -1), channel_mask[:1].expand(b, -1), groups[:1]
        gm = gm.expand(b, -1, -1)
        expected = model(batch, pos, cm, gm).logits.detach().numpy()
        (got,) = session.run(None, {"signals": batch.numpy(), "positions": pos.numpy(),
                                    "channel_mask": cm.numpy(), "group_mask": gm.numpy()})
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_export_twin_equals_model_and_leaves_it_alone(real):
    signals, positions, channel_mask = real
    torch.manual_seed(0)
    model = NeurIPTClassifier(_cfg(), 2, GROUPS).eval()
    twin = exportable_copy(model)
    assert any(isinstance(m, DenseRoutedMoE) for m in twin.modules())
    assert not any(isinstance(m, DenseRoutedMoE) for m in model.modules())
    groups = _group_mask(NAMES_19, 2)
    torch.testing.assert_close(twin(signals, positions, channel_mask, groups).logits,
                               model(signals, positions, channel_mask, groups).logits,
                               rtol=1e-5, atol=1e-5)
