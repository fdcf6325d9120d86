"""Subject-wise amplitude normalisation (neuript.data.normalize) and its path to inference.

The gains must equalise each (subject, channel)'s median window std, never read labels, and
follow the model: finetune records them in the contract, evaluate/predict/stream apply them,
and a stream without calibration is refused rather than silently fed unscaled windows.
"""

from __future__ import annotations

import numpy as np
import pytest

from _finetune_data import eegmat_dir, micro_tcp_model
from neuript.data.normalize import (
    apply_gains,
    group_gains,
    normalize_groups,
    normalize_task,
    reference_power,
)
from neuript.errors import NeuriptError
from neuript.model_folder import load_classifier


@pytest.fixture(scope="module")
def mental_arithmetic():
    """All 36 subjects of MentalArithmetic, read from the EDFs (no cache)."""
    from neuript.data.tasks import build_task

    return build_task("mental_arithmetic", cache=False)


def test_gains_equalise_each_group_channel_and_keep_flat_channels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 3, 64)).astype(np.float32)
    x[:20] *= np.array([1.0, 5.0, 0.5], np.float32)[:, None]  # subject a: odd channel sizes
    x[20:] *= 30.0  # subject b: everything 30x louder
    x[:, 2][20:] = 0.0  # subject b's third channel is flat
    groups = np.array(["a"] * 20 + ["b"] * 20)
    names, gains = group_gains(x, groups, "channel_std", 10.0)
    assert names.tolist() == ["a", "b"] and gains.shape == (2, 3, 1)
    y = normalize_groups(x, groups, "channel_std", 10.0)
    assert y.dtype == np.float32 and not np.shares_memory(x, y)
    med = {g: np.median(y[groups == g].std(-1), axis=0) for g in ("a", "b")}
    np.testing.assert_allclose(med["a"], 10.0, rtol=1e-5)
    np.testing.assert_allclose(med["b"][:2], 10.0, rtol=1e-5)
    assert gains[1, 2, 0] == 1.0 and np.all(y[20:, 2] == 0)  # flat stays flat, not blown up
    # one gain per (group, channel): the shape of every window is kept
    np.testing.assert_allclose(y[3] / gains[0], x[3], rtol=1e-5)
    with pytest.raises(NeuriptError, match="target_std_uv"):
        group_gains(x, groups, "channel_std", 0.0)
    with pytest.raises(NeuriptError, match="sfreq_hz"):
        group_gains(x, groups, "spectral", 10.0)


def _coloured(rng, n, c, t, sfreq, colour):
    """Windows (n, c, t) of white noise through the amplitude response ``colour(f)``."""
    freqs = np.fft.rfftfreq(t, 1 / sfreq)
    white = np.fft.rfft(rng.standard_normal((n, c, t)), axis=-1)
    return np.fft.irfft(white * colour(freqs), n=t, axis=-1)


def test_spectral_takes_two_differently_coloured_people_to_one_spectrum():
    """Subject b is subject a's EEG through a smooth filter: after ``spectral`` the two have
    the same average spectrum, the 1/f reference inside the band, and the target size."""
    rng, sfreq, t = np.random.default_rng(0), 64.0, 320
    band = (1.0, 30.0)
    a = _coloured(rng, 200, 2, t, sfreq, lambda f: 1 / np.maximum(f, 1.0))
    b = _coloured(rng, 200, 2, t, sfreq, lambda f: 3.0 * np.exp(-f / 10) / np.maximum(f, 1.0))
    x = np.concatenate([a, b]).astype(np.float32)
    groups = np.array(["a"] * 200 + ["b"] * 200)
    names, gains = group_gains(x, groups, "spectral", 10.0, sfreq_hz=sfreq, band_hz=band)
    assert gains.shape == (2, 2, t // 2 + 1)
    y = normalize_groups(x, groups, "spectral", 10.0, sfreq_hz=sfreq, band_hz=band)
    freqs = np.fft.rfftfreq(t, 1 / sfreq)
    inside = (freqs >= 3) & (freqs <= 27)  # away from the smoothing's edge bins
    power = {g: (np.abs(np.fft.rfft(y[groups == g], axis=-1)) ** 2).mean(0) for g in "ab"}
    ratio = np.log(power["a"][:, inside] / power["b"][:, inside])
    assert np.abs(ratio).mean() < 0.15, np.abs(ratio).mean()  # same spectrum (was ~2 apart)
    ref = reference_power(t, sfreq, 10.0, band)
    assert np.abs(np.log(power["a"][:, inside] / ref[inside])).mean() < 0.15
    # the target size (above it by the white noise left outside the 1-30 Hz band)
    assert 10.0 <= np.median(y.std(-1)) < 12.0
    # outside the band the gain is the band edge's: the stop band is not lifted to 1/f
    assert np.all(gains[:, :, freqs > 30] == gains[:, :, [np.flatnonzero(freqs <= 30)[-1]]])
    # the same gains on the windows one by one (predict, stream) give the same windows
    np.testing.assert_allclose(apply_gains(x[:3], gains[0]), y[:3], rtol=1e-4, atol=1e-4)
    with pytest.raises(NeuriptError, match="frequency bins"):
        apply_gains(x[:, :, :100], gains[0])


def test_real_task_each_subject_lands_on_the_target_and_labels_are_not_read(mental_arithmetic):
    task = mental_arithmetic
    out = normalize_task(task, "channel_std", 10.0)
    assert normalize_task(task, "none") is task
    assert not np.shares_memory(out.signals, task.signals)
    for subject in np.unique(task.subjects)[:5]:
        rows = task.subjects == subject
        med = np.median(out.signals[rows].std(-1), axis=0)
        np.testing.assert_allclose(med, 10.0, rtol=1e-4)
    from dataclasses import replace

    shuffled = replace(task, labels=np.random.default_rng(1).permutation(task.labels))
    np.testing.assert_array_equal(normalize_task(shuffled, "channel_std").signals, out.signals)


def test_band_power_gains_from_subject_norm_on_a_real_fold(mental_arithmetic, tmp_path):
    """Fold 0 of the recipe study's CV: the subject shift costs band power + LR points."""
    from neuript.data.splits import fold_task, subject_folds
    from neuript.train.finetune import FinetuneRunConfig, run_finetune

    task = fold_task(mental_arithmetic, subject_folds(mental_arithmetic.subjects, 6), 0)
    acc = {}
    for norm in ("none", "channel_std", "spectral"):
        cfg = FinetuneRunConfig(model="bandpower_lr", seeds=(0,), subject_norm=norm,
                                out_dir=str(tmp_path / norm), report=False)
        acc[norm] = run_finetune(cfg, task=task).per_seed[0]["test"]["balanced_accuracy"]
    assert acc["none"] == pytest.approx(0.684, abs=0.01)  # recipe.md's bandpower_lr, fold 0
    assert acc["channel_std"] > acc["none"] + 0.04, acc
    assert acc["spectral"] > acc["none"] + 0.06, acc


@pytest.fixture(scope="module")
def norm_model_dir(tmp_path_factory):
    """A micro NeurIPT classifier (random weights) whose contract says subject_norm."""
    return micro_tcp_model(tmp_path_factory.mktemp("norm_model") / "model",
                           subject_norm="channel_std", subject_norm_uv=10.0)


def test_predict_applies_the_gains_of_the_recording_or_of_calibration(norm_model_dir):
    from neuript.predict import prepare_input, run_predict, subject_gains

    loaded = load_classifier(norm_model_dir)
    assert loaded.contract.subject_norm == "channel_std"
    task_file = eegmat_dir() / "Subject33_2.edf"
    rest_file = eegmat_dir() / "Subject33_1.edf"
    own = prepare_input(task_file, loaded, norm_model_dir)
    gains = subject_gains([task_file], loaded, norm_model_dir)
    assert gains.shape == (20, 1) and np.all(gains > 0)
    same = prepare_input(task_file, loaded, norm_model_dir, gains=gains)
    np.testing.assert_allclose(same.signals, own.signals, rtol=1e-5, atol=1e-6)
    both = subject_gains([rest_file, task_file], loaded, norm_model_dir)
    assert not np.allclose(both, gains)  # the person's rest changes the gains
    result = run_predict(task_file, norm_model_dir, calibration=[rest_file, task_file])
    assert result.summary["subject_norm"]["gains_from"] == [str(rest_file), str(task_file)]
    assert run_predict(task_file, norm_model_dir).summary["subject_norm"]["gains_from"] == [
        str(task_file)]


def test_a_model_without_subject_norm_refuses_calibration(tmp_path, norm_model_dir):
    from dataclasses import replace

    from neuript.predict import prepare_input

    loaded = load_classifier(norm_model_dir)
    plain = loaded._replace(contract=replace(loaded.contract, subject_norm="none"))
    with pytest.raises(NeuriptError, match="drop --calibration"):
        prepare_input(eegmat_dir() / "Subject33_2.edf", plain, norm_model_dir,
                      gains=np.ones(20))


def test_online_model_refuses_a_subject_norm_model_without_gains(norm_model_dir):
    from neuript.data.io import read_recording
    from neuript.online import OnlineModel

    pytest.importorskip("mne_lsl")
    loaded = load_classifier(norm_model_dir)
    rec = read_recording(eegmat_dir() / "Subject33_2.edf")
    with pytest.raises(NeuriptError, match="--calibration"):
        OnlineModel(loaded, rec.ch_names, rec.sfreq_hz, model_dir=norm_model_dir)
    from neuript.predict import subject_gains

    gains = subject_gains([rec], loaded, norm_model_dir)
    online = OnlineModel(loaded, rec.ch_names, rec.sfreq_hz, model_dir=norm_model_dir,
                         gains=gains)
    np.testing.assert_allclose(online.gains, gains)
    context = rec.data[:, : online.need]
    louder = OnlineModel(loaded, rec.ch_names, rec.sfreq_hz, model_dir=norm_model_dir,
                         gains=gains * 8.0)
    assert not np.allclose(online.predict(context), louder.predict(context))  # gains are used


def test_predict_with_a_spectral_model_uses_per_bin_gains(norm_model_dir):
    from dataclasses import replace

    from neuript.predict import prepare_input, subject_gains

    loaded = load_classifier(norm_model_dir)
    spectral = loaded._replace(contract=replace(loaded.contract, subject_norm="spectral"))
    task_file = eegmat_dir() / "Subject33_2.edf"
    gains = subject_gains([task_file], spectral, norm_model_dir)
    assert gains.shape == (20, 5 * 64 // 2 + 1)
    own = prepare_input(task_file, spectral, norm_model_dir)
    given = prepare_input(task_file, spectral, norm_model_dir, gains=gains)
    np.testing.assert_allclose(given.signals, own.signals, rtol=1e-4, atol=1e-5)
    plain = prepare_input(task_file, loaded._replace(contract=replace(
        loaded.contract, subject_norm="none")), norm_model_dir)
    assert not np.allclose(own.signals, plain.signals)


def test_a_task_whose_label_is_the_subject_is_refused(mental_arithmetic):
    """Patients vs controls: normalising each subject would erase the label (ADHD: 66 -> 59)."""
    from dataclasses import replace

    task = mental_arithmetic
    per_subject = np.unique(task.subjects.astype(str), return_inverse=True)[1] % 2
    trait = replace(task, labels=per_subject.astype(task.labels.dtype))  # one class per subject
    with pytest.raises(NeuriptError, match=r"only 0 of \d+ training subjects.*--subject_norm none"):
        normalize_task(trait, "spectral")
    assert normalize_task(trait, "none") is trait
