"""The plain PyTorch module: positions from chs_info, the same logits as the trained classifier."""

from __future__ import annotations

import mne
import numpy as np
import pytest
import torch

from _finetune_data import MICRO
from _mne_data import mi_epochs
from neuript.data.montage import TCP_PAIRS, channel_position
from neuript.errors import ChannelError, ContractError, NeuriptError
from neuript.model.neuript import NeurIPTClassifier as NeurIPTNet
from neuript.module import build_module
from neuript.sklearn import NeurIPTClassifier

PROBE_POS = (0.021, -0.043, 0.079)
TCP_NAMES = [f"{a}-{b}" for a, b in TCP_PAIRS]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A micro NeurIPT fine-tuned for one epoch through the sklearn estimator (folder kept)."""
    epochs, y, groups = mi_epochs(2.0)
    out = tmp_path_factory.mktemp("run")
    est = NeurIPTClassifier(preset="tiny", model_overrides=MICRO, epochs=1, batch_size=16,
                            threads=1, device="cpu", out_dir=str(out)).fit(epochs, y, groups)
    return est, epochs


def test_module_from_chs_info_matches_the_classifier_logits(trained):
    est, epochs = trained
    expected = est.predict_logits(epochs)
    module = build_module(8, 2, 128, 64.0, chs_info=epochs.info["chs"], preset="tiny",
                          model_overrides=MICRO)
    assert module.ch_names == est.ch_names_
    np.testing.assert_allclose(module.positions.numpy(), est.positions_, rtol=1e-6)
    assert module.classifier.group_names == est.model_.group_names
    module.classifier.load_state_dict(est.model_.state_dict())
    module.eval()
    with torch.no_grad():
        logits = module(torch.from_numpy(est.model_input(epochs)))
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-5, atol=1e-5)

    # the same weights read back from the fine-tuned folder; volts in, µV + A-law inside
    from_dir = build_module(8, 2, 128, 64.0, chs_info=epochs.info["chs"], init=str(est.model_dir_),
                            raw_input=True).eval()
    with torch.no_grad():
        logits_v = from_dir(torch.from_numpy(est.epoch_windows(epochs) * 1e-6))
    np.testing.assert_allclose(logits_v.numpy(), expected, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        converted = est.to_module().eval()(torch.from_numpy(est.model_input(epochs)))
    np.testing.assert_allclose(converted.numpy(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ContractError, match="64 Hz"):
        build_module(8, 2, 128, 160.0, chs_info=epochs.info["chs"], init=str(est.model_dir_))
    with pytest.raises(ContractError, match="outputs"):
        build_module(8, 3, 128, 64.0, chs_info=epochs.info["chs"], init=str(est.model_dir_))


def test_custom_electrode_takes_loc_and_an_unplaced_one_is_refused():
    info = mne.create_info(["EEG C3", "Probe", "Cz"], 64.0, "eeg")
    info["chs"][1]["loc"][:3] = PROBE_POS
    info["chs"][0]["loc"][:3] = (0.5, 0.5, 0.5)  # a 10-05 name keeps the package's position
    module = build_module(3, 2, 64, 64.0, chs_info=info["chs"], preset="tiny",
                          model_overrides=MICRO)
    assert module.ch_names == ("C3", "Probe", "Cz")
    from neuript.data.mne_bridge import head_to_package

    np.testing.assert_allclose(module.positions[1].numpy(),
                               head_to_package(np.array(PROBE_POS)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(module.positions[0].numpy(), channel_position("C3"), rtol=1e-6)
    unplaced = mne.create_info(["C3", "Xyz"], 64.0, "eeg")
    with pytest.raises(ChannelError, match="Xyz"):
        build_module(2, 2, 64, 64.0, chs_info=unplaced["chs"], preset="tiny")


def test_pretrained_encoder_loads_and_the_aux_loss_trains():
    module = build_module(20, 3, 256, 64.0, ch_names=TCP_NAMES, init="neuript-small")
    reference, _ = NeurIPTNet.from_pretrained("neuript-small", n_classes=3,
                                              group_names=module.classifier.group_names)
    ours = module.classifier.state_dict()
    for name, tensor in reference.state_dict().items():
        if name.startswith(("embedding.", "encoder.")):
            torch.testing.assert_close(ours[name], tensor, msg=name)
    with pytest.raises(ContractError, match="resample"):
        build_module(20, 3, 256, 128.0, ch_names=TCP_NAMES, init="neuript-small")

    torch.manual_seed(0)
    small = build_module(20, 2, 64, 64.0, ch_names=TCP_NAMES, preset="tiny",
                         model_overrides=MICRO)
    x = torch.randn(4, 20, 64)
    logits = small(x)
    assert logits.shape == (4, 2) and small.aux_loss is not None and small.aux_loss.ndim == 0
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1]))
    (loss + small.aux_weight * small.aux_loss).backward()
    grads = [p.grad for p in small.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads[:5])


def test_shape_errors_name_the_values():
    with pytest.raises(NeuriptError, match="divisible"):
        build_module(20, 2, 250, 64.0, ch_names=TCP_NAMES, preset="small")
    with pytest.raises(NeuriptError, match="n_chans=19"):
        build_module(19, 2, 64, 64.0, ch_names=TCP_NAMES, preset="tiny")
    module = build_module(20, 2, 64, 64.0, ch_names=TCP_NAMES, preset="tiny",
                          model_overrides=MICRO)
    with pytest.raises(NeuriptError, match=r"\(B, 20, T\)"):
        module(torch.zeros(2, 19, 64))
