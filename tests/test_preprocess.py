"""Preprocessing: filters against MNE, resampling against scipy, A-law values, windows, rejection,
and the whole pipeline on real EEGMAT and ADHD recordings."""

from __future__ import annotations

import dataclasses
import math
import time

import mne
import numpy as np
import pytest
import torch
from scipy import signal

from neuript.config import PreprocessConfig
from neuript.data.filters import MAX_RESAMPLE_FACTOR, RESAMPLE_RATE_RTOL, resample_factor
from neuript.data.io import read_recording
from neuript.data.montage import TCP_PAIRS, build_channel_map
from neuript.data.preprocess import (
    alaw,
    bandpass,
    clipped_samples,
    notch,
    prepare_recording,
    preprocess_continuous,
    resample,
    to_microvolts,
)
from neuript.data.recording import Recording
from neuript.data.windows import (
    REJECT_REASONS,
    cut_windows,
    event_starts,
    gather_windows,
    reject_windows,
    sliding_starts,
)
from neuript.errors import ChannelError, NeuriptError
from neuript.paths import data_root

torch.set_num_threads(1)
EEGMAT_REST = data_root() / "eegmat" / "Subject00_1.edf"
EEGMAT_TASK = data_root() / "eegmat" / "Subject00_2.edf"
ADHD = data_root() / "adhd" / "adhd" / "v10p.csv.gz"


@pytest.fixture(scope="module")
def rest() -> Recording:
    return read_recording(EEGMAT_REST)


def _sines(freqs: list[float], sfreq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * sfreq)) / sfreq
    return np.stack([np.sin(2 * np.pi * f * t) for f in freqs])


def _gain(filtered: np.ndarray, original: np.ndarray, margin: int) -> np.ndarray:
    inner = slice(margin, -margin)
    return filtered[:, inner].std(axis=1) / original[:, inner].std(axis=1)


# ------------------------------------------------------------------------------------------
# single steps
# ------------------------------------------------------------------------------------------
def test_bandpass_equals_mne_raw_filter(rest: Recording) -> None:
    raw = mne.io.RawArray(rest.data, mne.create_info(list(rest.ch_names), 250.0, "eeg"),
                          verbose="error")
    expected = raw.copy().filter(0.1, 30.0, verbose="error").get_data()
    before = rest.data.copy()
    out = bandpass(rest.data, 250.0, 0.1, 30.0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(rest.data, before)
    assert out is not rest.data


def test_bandpass_frequency_response() -> None:
    x = _sines([0.02, 10.0, 45.0], 250.0, 120.0)
    gain = _gain(bandpass(x, 250.0, 0.1, 30.0), x, 250 * 35)
    assert gain[1] == pytest.approx(1.0, abs=0.01)
    assert gain[0] < 0.1 and gain[2] < 0.01
    np.testing.assert_array_equal(bandpass(x, 250.0, None, None), x)
    with pytest.raises(NeuriptError, match="Nyquist"):
        bandpass(x, 50.0, 0.1, 30.0)


def test_notch_removes_mains_only_and_skips_above_nyquist() -> None:
    x = _sines([10.0, 50.0, 100.0], 250.0, 20.0)
    gain = _gain(notch(x, 250.0, 50.0), x, 500)
    assert gain[0] == pytest.approx(1.0, abs=0.01)
    assert gain[1] < 0.05 and gain[2] < 0.05
    slow = _sines([10.0, 30.0], 80.0, 10.0)
    np.testing.assert_array_equal(notch(slow, 80.0, 50.0), slow)


@pytest.mark.parametrize(("sfreq", "target"), [(250.0, 64.0), (160.0, 64.0), (256.0, 64.0),
                                               (128.0, 64.0), (500.0, 64.0)])
def test_resample_against_scipy_fft_resample(sfreq: float, target: float) -> None:
    x = _sines([3.0, 7.5, 20.0], sfreq, 20.0) + 0.3
    out = resample(x, sfreq, target)
    n_out = math.ceil(x.shape[1] * target / sfreq)
    assert out.shape == (3, n_out)
    reference = signal.resample(x, n_out, axis=1)  # FFT method: exact for periodic band-limited
    inner = slice(int(target), -int(target))
    np.testing.assert_allclose(out[:, inner], reference[:, inner], atol=2e-3)
    np.testing.assert_array_equal(resample(x, sfreq, sfreq), x)


def _analytic(sfreq: float, n_samples: int) -> np.ndarray:
    """A 10 Hz sine and an offset 3.3 Hz cosine sampled at ``sfreq``, shape (2, n_samples)."""
    t = np.arange(n_samples) / sfreq
    return np.stack([np.sin(2 * np.pi * 10.0 * t), np.cos(2 * np.pi * 3.3 * t) + 0.5])


@pytest.mark.parametrize("sfreq", [173.61, 64.0001234 * 250 / 64, 1000 / 3 * 1.0000037])
def test_resample_any_rate_matches_the_analytic_signal(sfreq: float) -> None:
    """Rates that are no simple fraction of 64 Hz (issue 13: 173.61 Hz was refused)."""
    n_samples = int(60 * sfreq) + 7
    up, down = resample_factor(sfreq, 64.0)
    assert max(up, down) <= MAX_RESAMPLE_FACTOR
    assert abs(up / down * sfreq / 64.0 - 1) <= RESAMPLE_RATE_RTOL
    for padtype in ("constant", "antireflect"):
        out = resample(_analytic(sfreq, n_samples), sfreq, 64.0, padtype=padtype)
        assert out.shape == (2, math.ceil(n_samples * up / down))
        assert abs(out.shape[1] - n_samples * 64.0 / sfreq) < 1.0
        inner = slice(64, -64)  # 1 s from each edge
        np.testing.assert_allclose(out[:, inner], _analytic(64.0, out.shape[1])[:, inner],
                                   atol=5e-3)


def test_resample_outside_the_rate_tolerance_warns_and_bad_rates_name_the_file(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No fraction within the tolerance: the closest one is used, with one warning."""
    from neuript.data import filters

    sfreq, n_samples = 173.61, 17361  # 100 s
    monkeypatch.setattr(filters, "MAX_RESAMPLE_FACTOR", 1000)  # best: 87/236, 4.6 ppm off
    monkeypatch.setattr(filters, "RESAMPLE_RATE_RTOL", 1e-6)
    assert resample_factor(sfreq, 64.0) == (87, 236)
    x = _analytic(sfreq, n_samples)
    with caplog.at_level("WARNING", logger="neuript.data.filters"):
        out = resample(x, sfreq, 64.0, padtype="antireflect", source="odd.edf")
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and warned[0].startswith("odd.edf: ") and "4.6 ppm" in warned[0]
    assert out.shape == (2, math.ceil(n_samples * 87 / 236)) == (2, 6401)  # T·64/sfreq = 6400
    inner = slice(64, -64)  # 0.46 ms of drift at the end: 0.03 of a 10 Hz sine's amplitude
    np.testing.assert_allclose(out[:, inner], _analytic(64.0, out.shape[1])[:, inner], atol=0.05)
    with pytest.raises(NeuriptError, match=r"^odd\.edf: resample: rates must be finite"):
        resample(x, float("nan"), 64.0, source="odd.edf")
    with pytest.raises(NeuriptError, match=r"^odd\.edf: resample: 1000000\.0 Hz → 64\.0 Hz has no "
                       r"factor .* <= 1000 within 0\.1% \(best 0/1\); set sfreq_hz"):
        resample(x, 1e6, 64.0, source="odd.edf")
    up, down = resample_factor(16.0001, 64.0)  # upsampling: the larger factor is bounded too
    assert up <= 1000 and abs(up / down * 16.0001 / 64.0 - 1) < 1e-4


def test_pipeline_at_a_non_rational_rate() -> None:
    """preprocess_continuous on a 173.61 Hz recording (as_is montage): 64 Hz, expected length."""
    sfreq, n_samples = 173.61, int(173.61 * 40)
    data_v = _analytic(sfreq, n_samples) * 20e-6
    rec = Recording(data=data_v, sfreq_hz=sfreq, ch_names=("Cz", "Pz"), source="odd.edf")
    cfg = PreprocessConfig(montage="as_is", notch_hz=None)
    out = preprocess_continuous(rec, cfg)
    up, down = resample_factor(sfreq, 64.0)
    assert out.sfreq_hz == 64.0 and out.data.shape == (2, math.ceil(n_samples * up / down))


def test_to_microvolts() -> None:
    volts = np.array([[1e-6, -2.5e-5]])
    np.testing.assert_allclose(to_microvolts(volts), [[1.0, -25.0]])
    assert volts[0, 0] == 1e-6


def test_alaw_known_values_continuity_oddness() -> None:
    a = 0.25
    expected = (1 + math.log(25.0)) / (math.e + math.log(a))
    y = alaw(np.array([100.0, -100.0, 0.0]), a)
    np.testing.assert_allclose(y, [expected, -expected, 0.0])
    assert expected == pytest.approx(3.1674, abs=1e-4)
    eps = 1e-9
    below, above = alaw(np.array([1 / a - eps, 1 / a + eps]), a)
    assert abs(above - below) < 1e-8
    x = np.linspace(-500, 500, 2001)
    np.testing.assert_allclose(alaw(-x, a), -alaw(x, a))
    assert np.all(np.diff(alaw(x, a)) > 0)
    small = np.array([0.5, 2.0])
    np.testing.assert_allclose(alaw(small, a), a * small / (math.e + math.log(a)))
    as_torch = alaw(torch.tensor(x, dtype=torch.float32), a)
    assert isinstance(as_torch, torch.Tensor) and as_torch.dtype == torch.float32
    np.testing.assert_allclose(as_torch.numpy(), alaw(x, a), rtol=1e-5, atol=1e-6)
    assert alaw(x.astype(np.float32), a).dtype == np.float32


def test_sliding_starts_and_gather_windows() -> None:
    data = np.arange(2 * 10, dtype=np.float32).reshape(2, 10)
    starts = sliding_starts(10, 4, 3)
    windows = gather_windows(data, starts, 4)
    assert windows.shape == (3, 2, 4) and starts.tolist() == [0, 3, 6]
    for w, s in zip(windows, starts):
        np.testing.assert_array_equal(w, data[:, s:s + 4])
    windows[0, 0, 0] = -1
    assert data[0, 0] == 0
    back_to_back = gather_windows(data, sliding_starts(10, 3, 3, start=1), 3)  # reshape path
    np.testing.assert_array_equal(back_to_back[1], data[:, 4:7])
    assert sliding_starts(10, 11, 11).shape == (0,)
    assert gather_windows(data, sliding_starts(10, 11, 11), 11).shape == (0, 2, 11)
    assert sliding_starts(10, 4, 3, start=-5).tolist() == [1, 4]  # the grid keeps its anchor
    assert sliding_starts(10, 2, 2, start=3, stop=8).tolist() == [3, 5]
    with pytest.raises(NeuriptError, match="leave a 10-sample signal"):
        gather_windows(data, np.array([8]), 4)


def test_reject_windows_reasons_and_priority() -> None:
    rng = np.random.default_rng(0)
    windows = rng.normal(0, 10, (6, 3, 100))
    windows[1, 0, 5] = np.nan
    windows[2, 1] = 0.01 * rng.normal(size=100)  # flat
    windows[3, 2, 50] = 150.0  # amplitude
    windows[4, 1] = 0.0
    windows[4, 2, 3] = 500.0  # flat and amplitude: counted as flat
    clipped = np.array([False, False, False, False, False, True])
    before = windows.copy()
    keep, counts = reject_windows(windows, 100.0, 0.1, clipped=clipped)
    assert keep.tolist() == [True, False, False, False, False, False]
    assert counts == {"nan": 1, "clipped": 1, "flat": 2, "amplitude": 1}
    assert tuple(counts) == REJECT_REASONS
    np.testing.assert_array_equal(windows, before)
    keep, counts = reject_windows(windows, None, None)
    assert keep.tolist() == [True, False, True, True, True, True]


def test_clipped_samples() -> None:
    t = np.arange(1000) / 100.0
    clean = np.sin(2 * np.pi * 1.3 * t)[None] * 50.0
    assert not clipped_samples(clean).any()
    clipped = np.clip(clean, -40.0, 40.0)
    mask = clipped_samples(np.vstack([clean, clipped]))
    np.testing.assert_array_equal(mask, np.abs(clipped[0]) == 40.0)
    assert not clipped_samples(np.zeros((2, 100))).any()


# ------------------------------------------------------------------------------------------
# the pipeline on real recordings
# ------------------------------------------------------------------------------------------
def test_prepare_eegmat_tcp(rest: Recording) -> None:
    before = rest.data.copy()
    cfg = PreprocessConfig(window_s=5.0)
    prepared = prepare_recording(rest, cfg)
    n_out = math.ceil(rest.n_samples * 64 / 250)
    assert n_out == 11648
    total = n_out // 320
    assert prepared.windows.shape[1:] == (20, 320)
    assert prepared.windows.dtype == np.float32
    assert prepared.windows.shape[0] + sum(prepared.rejected.values()) == total
    assert prepared.windows.shape[0] >= total - 3
    assert np.all(prepared.starts % 320 == 0)
    assert prepared.ch_names[0] == "Fp1-F7" and prepared.positions.shape == (20, 3)
    std_uv = prepared.windows.std(axis=2)
    assert 2.0 < np.median(std_uv) < 50.0
    assert np.abs(prepared.windows).max() <= 100.0
    np.testing.assert_array_equal(rest.data, before)
    assert prepared.duration_s == pytest.approx(182.0)
    assert (prepared.subject, prepared.session) == ("Subject00", "1")


def test_prepare_trims_edges_and_skips_short_recordings(rest: Recording) -> None:
    cfg = PreprocessConfig(window_s=4.0, trim_edges_s=10.0, reject_abs_uv=None)
    prepared = prepare_recording(rest, cfg)
    assert prepared.windows.shape[0] == (11648 - 2 * 640) // 256
    assert prepared.starts[0] == 640 and prepared.starts[-1] + 256 <= 11648 - 640
    short = read_recording(EEGMAT_TASK)
    skipped = prepare_recording(short, PreprocessConfig(min_duration_s=300.0))
    assert skipped.windows.shape == (0, 20, 256)
    assert "min_duration_s" in skipped.skipped


def test_continuous_tcp_equals_filtered_manual_difference(rest: Recording) -> None:
    cfg = PreprocessConfig()
    cont = preprocess_continuous(rest, cfg)
    row = {n: i for i, n in enumerate(rest.ch_names)}
    manual = rest.data[row["EEG Fp1"]] - rest.data[row["EEG F7"]]
    # the pipeline's order: resample (odd-reflection padding) → band-pass at 64 Hz; the 50 Hz
    # notch is above the 32 Hz Nyquist, so it is skipped (a no-op after the anti-alias filter)
    at_64 = resample(manual[None], 250.0, 64.0, padtype="antireflect")
    expected = bandpass(at_64, 64.0, 0.1, 30.0)
    np.testing.assert_allclose(cont.data[0], expected[0] * 1e6, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(notch(at_64, 64.0, 50.0), at_64)
    assert cont.sfreq_hz == 64.0 and cont.data.dtype == np.float32
    assert cont.clipped is not None and cont.clipped.shape == (cont.data.shape[1],)


@pytest.mark.parametrize("name", ["Subject00_1.edf", "Subject12_2.edf"])
def test_pipeline_equals_mne_filtering_at_the_original_rate(name: str) -> None:
    """Resample-then-filter (the pipeline) vs the reference order on real EEGMAT windows:
    MNE band-pass + 50/100 Hz notch at 250 Hz, then resample_poly to 64 Hz."""
    rec = read_recording(data_root() / "eegmat" / name)
    cfg = PreprocessConfig(reject_abs_uv=None, flat_std_uv=None, trim_edges_s=2.0)
    prepared = prepare_recording(rec, cfg)
    x = build_channel_map(rec.ch_names, "tcp").matrix @ rec.data
    ref = mne.filter.filter_data(x, 250.0, 0.1, 30.0, method="fir", phase="zero",
                                 fir_design="firwin", verbose="error")
    ref = mne.filter.notch_filter(ref, 250.0, [50.0, 100.0], method="fir", phase="zero",
                                  fir_design="firwin", verbose="error")
    ref = signal.resample_poly(ref, 32, 125, axis=1) * 1e6
    ref_windows = np.stack([ref[:, s:s + 256] for s in prepared.starts])
    assert ref_windows.shape == prepared.windows.shape and len(ref_windows) >= 10
    new = prepared.windows.transpose(1, 0, 2).reshape(20, -1).astype(np.float64)
    old = ref_windows.transpose(1, 0, 2).reshape(20, -1)
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(new, old)]
    assert min(corr) > 0.99, corr
    diff = np.abs(new - old)
    assert diff.max() < 0.25 * old.std(), (diff.max(), old.std())
    assert (new - old).std() < 0.05 * old.std()
    # the difference is the low-pass transition band only: above 28 Hz
    f, p_diff = signal.welch(new - old, fs=64.0, nperseg=256, axis=1)
    assert p_diff[:, f < 28].sum() < 0.01 * p_diff.sum()


def test_prepare_adhd_monopolar() -> None:
    rec = read_recording(ADHD)
    cfg = PreprocessConfig(montage="monopolar", reject_abs_uv=None, window_s=4.0)
    prepared = prepare_recording(rec, cfg)
    n_out = math.ceil(rec.n_samples * 64 / 128)
    assert prepared.windows.shape == (n_out // 256 - sum(prepared.rejected.values()), 19, 256)
    assert prepared.ch_names == ("Fp1", "Fp2", "F3", "F4", "C3", "C4", "P3", "P4", "O1", "O2",
                                 "F7", "F8", "T7", "T8", "P7", "P8", "Fz", "Cz", "Pz")
    assert 10.0 < np.median(prepared.windows.std(axis=2)) < 300.0
    strict = prepare_recording(rec, PreprocessConfig(montage="monopolar", window_s=4.0))
    assert strict.rejected["amplitude"] > 0


def test_clipped_channel_rejects_its_windows(rest: Recording) -> None:
    data = rest.data.copy()
    rail = data[0, 5000:5100].max()
    data[0, 5000:5100] = rail + 1e-4  # a 0.4-s saturation at 250 Hz, the channel's maximum
    cfg = PreprocessConfig(window_s=4.0, reject_abs_uv=None)
    prepared = prepare_recording(Recording(data, 250.0, rest.ch_names, source="clip.edf"), cfg)
    assert prepared.rejected["clipped"] >= 1
    bad_start = int(5000 * 64 / 250)
    assert not np.any((prepared.starts <= bad_start) & (prepared.starts + 256 > bad_start))


def test_unknown_channel_and_empty_montage_errors(rest: Recording) -> None:
    odd = Recording(rest.data[:2], 250.0, ("Foo", "Bar"), source="odd.edf")
    with pytest.raises(ChannelError, match="odd.edf.*Foo"):
        preprocess_continuous(odd, PreprocessConfig(montage="monopolar"))
    with pytest.raises(ChannelError, match="no usable EEG channel"):
        preprocess_continuous(odd, PreprocessConfig(montage="monopolar"), on_unknown="drop")


def test_event_starts_and_cut_windows(rest: Recording) -> None:
    cont = preprocess_continuous(rest, PreprocessConfig(montage="monopolar"))
    onsets = np.array([-1.0, 0.0, 10.0, 181.9])
    starts, valid = event_starts(onsets, -0.1, cont.sfreq_hz, cont.data.shape[1], 64)
    assert valid.tolist() == [False, False, True, False]
    start = round(9.9 * 64)
    assert starts.tolist() == [start]
    cut = cut_windows(cont, starts, 64, None)
    assert cut.windows.shape == (1, 19, 64) and cut.windows.dtype == np.float32
    np.testing.assert_array_equal(cut.windows[0], cont.data[:, start:start + 64])


def test_cut_windows_applies_one_rule_everywhere(rest: Recording) -> None:
    """NaN windows always go; clipping, flat electrodes and amplitude only when asked for."""
    data = rest.data.copy()
    eeg = [i for i, n in enumerate(rest.ch_names) if "C3" in n][0]
    sf = rest.sfreq_hz
    data[eeg, int(40 * sf):int(50 * sf)] = 0.0  # a dead electrode: flat windows 8 and 9
    rec = dataclasses.replace(rest, data=data)
    off = PreprocessConfig(montage="tcp", reject_abs_uv=None, flat_std_uv=None)
    cont = preprocess_continuous(rec, off)
    with_nan = cont.data.copy()
    with_nan[3, 21 * 64] = np.nan  # inside window 4 only
    cont = dataclasses.replace(cont, data=with_nan)
    starts = sliding_starts(cont.data.shape[1], 320, 320)
    kept = cut_windows(cont, starts, 320, off, rec=rec)
    nan_windows = 1
    assert kept.rejected["nan"] == nan_windows and not kept.keep[4]
    assert kept.rejected["flat"] == kept.rejected["amplitude"] == 0
    on = dataclasses.replace(off, reject_abs_uv=1e9, flat_std_uv=0.1)
    screened = cut_windows(cont, starts, 320, on, rec=rec)
    assert screened.rejected["nan"] == nan_windows
    assert screened.rejected["flat"] >= 2  # the TCP pair with the dead C3 is not flat itself
    assert not screened.keep[8] and not screened.keep[9] and kept.keep[8]
    assert cut_windows(cont, starts, 320, None).windows.shape[0] == starts.size


def test_filtering_a_whole_recording_beats_mne_at_the_source_rate(rest: Recording) -> None:
    """The whole pipeline is faster than MNE's band-pass alone at 250 Hz (a ratio, same run)."""
    cfg = PreprocessConfig()
    preprocess_continuous(rest, cfg)  # warm-up (imports, filter design caches)
    cmap = build_channel_map(rest.ch_names, "tcp")
    assert cmap.matrix.shape[0] == 20
    ours, mne_s = [], []
    for _ in range(3):  # best of three, interleaved: the machine is shared
        t0 = time.perf_counter()
        preprocess_continuous(rest, cfg)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        mne.filter.filter_data(cmap.matrix @ rest.data, rest.sfreq_hz, 0.1, 30.0,
                               verbose="error")
        mne_s.append(time.perf_counter() - t0)
    assert min(ours) < min(mne_s), f"ours {min(ours):.2f} s, MNE band-pass {min(mne_s):.2f} s"


# ------------------------------------------------------------------------------------------
# the fast paths: batched FIR vs MNE, DC offsets, notch rule, clipping, the "auto" montage
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("band", [(0.1, 30.0), (1.0, None), (None, 20.0)])
@pytest.mark.parametrize("n_samples", [300, 5000])  # shorter / longer than the 2113-tap kernel
def test_bandpass_equals_mne_filter_data(band: tuple, n_samples: int) -> None:
    x = np.random.default_rng(5).normal(size=(3, n_samples)).cumsum(axis=1)
    expected = mne.filter.filter_data(x, 64.0, *band, method="fir", phase="zero",
                                      fir_design="firwin", verbose="error")
    np.testing.assert_allclose(bandpass(x, 64.0, *band), expected, rtol=0,
                               atol=1e-10 * np.abs(x).max())


def test_pipeline_ignores_electrode_dc_offsets(rest: Recording) -> None:
    """A 50 mV offset (common on DC-coupled amplifiers) must not leak into the µV output."""
    cfg = PreprocessConfig(montage="monopolar")
    clean = preprocess_continuous(rest, cfg).data
    offset = Recording(rest.data + 0.05, 250.0, rest.ch_names, source="offset.edf")
    np.testing.assert_allclose(preprocess_continuous(offset, cfg).data, clean, atol=1e-3)
    # float32 filtering vs the float64 reference of the same order of operations
    at_64 = resample(rest.data, 250.0, 64.0, padtype="antireflect")
    np.testing.assert_allclose(clean, bandpass(at_64, 64.0, 0.1, 30.0) * 1e6, rtol=0, atol=1e-3)


def test_notch_applied_below_nyquist_and_mains_removed_above_it() -> None:
    sfreq = 256.0
    x = _sines([10.0, 50.0], sfreq, 60.0).sum(axis=0, keepdims=True) * 20e-6  # 2 × 20 µV
    rec = Recording(x, sfreq, ("Cz",), source="sines.edf")
    # 128 Hz: 50 Hz is below Nyquist (64 Hz), so the notch runs; no low-pass to hide it
    wide = preprocess_continuous(rec, PreprocessConfig(sfreq_hz=128.0, montage="monopolar",
                                                       h_freq_hz=None, notch_hz=50.0))
    no_notch = preprocess_continuous(rec, PreprocessConfig(sfreq_hz=128.0, montage="monopolar",
                                                           h_freq_hz=None, notch_hz=None))
    f, p_notch = signal.welch(wide.data[0, 640:-640], fs=128.0, nperseg=512)
    _, p_plain = signal.welch(no_notch.data[0, 640:-640], fs=128.0, nperseg=512)
    at_50, at_10 = np.argmin(np.abs(f - 50.0)), np.argmin(np.abs(f - 10.0))
    assert p_notch[at_50] < 1e-3 * p_plain[at_50]
    assert p_notch[at_10] == pytest.approx(p_plain[at_10], rel=0.02)
    # 64 Hz: 50 Hz is above Nyquist; the anti-alias filter removes it (and its alias at 14 Hz)
    low = preprocess_continuous(rec, PreprocessConfig(montage="monopolar", h_freq_hz=None))
    mains_only = Recording(_sines([50.0], sfreq, 60.0) * 20e-6, sfreq, ("Cz",), source="m.edf")
    aliased = preprocess_continuous(mains_only, PreprocessConfig(montage="monopolar",
                                                                 h_freq_hz=None))
    assert aliased.data[:, 320:-320].std() < 0.01 * 20.0 / math.sqrt(2)
    assert low.data[0, 320:-320].std() == pytest.approx(20.0 / math.sqrt(2), rel=0.02)


def _clipped_reference(data: np.ndarray, min_run: int) -> np.ndarray:
    """Run-by-run loop: samples inside a run of >= min_run values at the channel's extreme."""
    out = np.zeros(data.shape[1], dtype=bool)
    for row in data:
        lo, hi = row.min(), row.max()
        if lo == hi:
            continue
        rail = (row == lo) | (row == hi)
        start = None
        for t, flag in enumerate([*rail, False]):
            if flag and start is None:
                start = t
            elif not flag and start is not None:
                if t - start >= min_run:
                    out[start:t] = True
                start = None
    return out


def test_clipped_samples_equals_run_by_run_reference() -> None:
    rng = np.random.default_rng(11)
    data = np.round(rng.normal(0, 3, (6, 2000)))  # integer values: many ties at the extremes
    data[1, 100:104] = data[1].max()
    data[2, 50:52] = data[2].min() - 1  # a run of 2: not clipping
    data[3, 1990:] = data[3].max() + 5  # a run at the very end
    data[4] = 7.0  # constant channel: left to the flat test
    for min_run in (2, 3, 5):
        np.testing.assert_array_equal(clipped_samples(data, min_run),
                                      _clipped_reference(data, min_run))
    assert clipped_samples(data)[100:104].all() and not clipped_samples(data)[50:52].any()


def test_auto_montage_picks_tcp_or_monopolar() -> None:
    assert PreprocessConfig(montage="auto").montage == "auto"
    with pytest.raises(NeuriptError, match="montage"):
        PreprocessConfig(montage="banana")  # type: ignore[arg-type]
    eegmat = read_recording(EEGMAT_REST)
    auto = build_channel_map(eegmat.ch_names, "auto", on_unknown="drop")
    tcp = build_channel_map(eegmat.ch_names, "tcp", on_unknown="drop")
    assert auto.names == tcp.names and len(auto.names) == 20
    np.testing.assert_array_equal(auto.matrix, tcp.matrix)
    muse = sorted((data_root() / "muse").rglob("*.csv.gz"))[0]
    prepared = prepare_recording(read_recording(muse),
                                 PreprocessConfig(montage="auto", reject_abs_uv=None))
    assert prepared.ch_names == ("TP9", "AF7", "AF8", "TP10")
    # one TCP electrode missing (O2): the recognised monopolar channels, in file order
    names = [n for n in eegmat.ch_names if n != "EEG O2"]
    partial = build_channel_map(names, "auto", on_unknown="drop")
    assert partial.names == build_channel_map(names, "monopolar", on_unknown="drop").names
    assert "O2" not in partial.names and len(partial.names) == 18
    bipolar = build_channel_map([f"{a}-{b}" for a, b in TCP_PAIRS], "auto")
    assert bipolar.names == tcp.names


def test_channel_map_memo_still_names_the_failing_file(rest: Recording) -> None:
    cfg = PreprocessConfig(montage="tcp")
    few = Recording(rest.data[:3], 250.0, rest.ch_names[:3], source="first.edf")
    for source in ("first.edf", "second.edf"):
        with pytest.raises(ChannelError, match=source):
            preprocess_continuous(Recording(few.data, 250.0, few.ch_names, source=source), cfg)
