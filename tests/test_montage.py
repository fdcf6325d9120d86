"""Channel names, positions, montages and pooling groups, checked against MNE and real files."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from neuript.data.io import read_recording
from neuript.data.montage import (
    TCP_PAIRS,
    ChannelMap,
    build_channel_map,
    canonical_name,
    channel_kind,
    channel_position,
    electrode_positions,
    pooling_groups,
)
from neuript.errors import ChannelError, NeuriptError
from neuript.paths import data_root

EEGMAT = data_root() / "eegmat" / "Subject00_1.edf"
EEGMMIDB = data_root() / "eegmmidb" / "S001" / "S001R04.edf"
# the paper's montage in its own (old) spelling, as NEURIPT_SPEC lists it
PAPER_TCP = (
    "Fp1-F7 F7-T3 T3-T5 T5-O1 Fp2-F8 F8-T4 T4-T6 T6-O2 T3-C3 C3-Cz Cz-C4 C4-T4 "
    "Fp1-F3 F3-C3 C3-P3 P3-O1 Fp2-F4 F4-C4 C4-P4 P4-O2"
).split()
OLD_TO_NEW = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("EEG Fp1-REF", "Fp1"), ("FP1", "Fp1"), ("fp1", "Fp1"), ("Fc5.", "FC5"), ("C3..", "C3"),
        ("T3", "T7"), ("T4", "T8"), ("T5", "P7"), ("T6", "P8"), ("EEG A2-A1", "A2-A1"),
        ("Fp1-F7", "Fp1-F7"), ("EEG FP1-F7", "Fp1-F7"), ("EEG Fpz-Cz", "Fpz-Cz"),
        ("Fp1-LE", "Fp1"), ("EEG T3-REF", "T7"), ("POZ", "POz"), ("Fcz.", "FCz"),
        ("xyz", None), ("ECG ECG", None), ("", None), ("Fp1-xyz", None),
    ],
)
def test_canonical_name(raw: str, expected: str | None) -> None:
    assert canonical_name(raw) == expected


def test_every_montage_name_is_its_own_canonical_name_in_any_case() -> None:
    names = mne.channels.make_standard_montage("colin27_1005").ch_names
    for name in names:
        if name in OLD_TO_NEW:  # colin27 also lists T3..T6 (same positions); modern name wins
            assert canonical_name(name) == OLD_TO_NEW[name]
            continue
        assert canonical_name(name) == name
        assert canonical_name(name.upper()) == name
        assert canonical_name(name.lower()) == name


def test_positions_are_mne_colin27_and_read_only() -> None:
    reference = mne.channels.make_standard_montage("colin27_1005").get_positions()["ch_pos"]
    positions = electrode_positions()
    assert set(positions) == set(reference)
    for name, pos in reference.items():
        np.testing.assert_array_equal(positions[name], pos)
    with pytest.raises(ValueError):
        positions["Cz"][0] = 1.0
    np.testing.assert_allclose(
        channel_position("EEG Fp1-F7"), (reference["Fp1"] + reference["F7"]) / 2
    )
    np.testing.assert_array_equal(channel_position("T3"), reference["T7"])
    np.testing.assert_array_equal(channel_position("X9", {"X9": [0.01, 0.02, 0.03]}),
                                  [0.01, 0.02, 0.03])
    with pytest.raises(ChannelError, match="close matches"):
        channel_position("Cz3")


def test_tcp_derivation_equals_manual_differences_on_eegmat() -> None:
    rec = read_recording(EEGMAT)
    cmap = build_channel_map(rec.ch_names, "tcp", source=rec.source)
    assert cmap.names == tuple(
        "-".join(OLD_TO_NEW.get(e, e) for e in pair.split("-")) for pair in PAPER_TCP
    )
    assert cmap.matrix.shape == (20, rec.n_channels)
    derived = cmap.apply(rec.data)
    row = {name: i for i, name in enumerate(rec.ch_names)}
    for k, pair in enumerate(PAPER_TCP):
        a, b = pair.split("-")
        manual = rec.data[row[f"EEG {a}"]] - rec.data[row[f"EEG {b}"]]
        np.testing.assert_array_equal(derived[k], manual)
    assert set(cmap.dropped) == {"EEG Fz", "EEG Pz"}
    assert cmap.aliases["EEG T3"] == "T7"
    expected_pos = [channel_position(n) for n in cmap.names]
    np.testing.assert_allclose(cmap.positions, expected_pos)


def test_tcp_missing_electrodes_are_listed() -> None:
    with pytest.raises(ChannelError, match=r"rec\.edf.*\['C4', 'Cz'") as err:
        build_channel_map(["Fp1", "Fp2", "F7", "F8", "T3", "T4", "C3"], "tcp", source="rec.edf")
    assert "O2" in str(err.value)


def test_unknown_channel_raises_with_close_match_or_is_dropped() -> None:
    names = ["Fp1", "Fp2", "Cz3"]
    with pytest.raises(ChannelError, match=r"my\.edf.*'Cz3'.*close matches: Cz"):
        build_channel_map(names, "monopolar", source="my.edf")
    cmap = build_channel_map(names, "monopolar", on_unknown="drop")
    assert cmap.names == ("Fp1", "Fp2")
    assert cmap.dropped == {"Cz3": "unknown channel name"}
    with pytest.raises(NeuriptError, match="on_unknown"):
        build_channel_map(names, "monopolar", on_unknown="ignore")
    with pytest.raises(NeuriptError, match="target"):
        build_channel_map(names, "banana")


def test_monopolar_on_eegmmidb_names() -> None:
    rec = read_recording(EEGMMIDB)
    cmap = build_channel_map(rec.ch_names, "monopolar", source=rec.source)
    assert len(cmap.names) == 64
    assert "FC5" in cmap.names and "Fp1" in cmap.names and "T9" in cmap.names
    np.testing.assert_array_equal(cmap.matrix, np.eye(64))
    groups = pooling_groups(cmap.names, cmap.positions, "functional")
    assert groups.mask.any(axis=0).all()


def test_already_bipolar_file_and_explicit_pairs() -> None:
    bipolar = build_channel_map(["EEG Fpz-Cz", "EEG Pz-Oz", "EOG horizontal"], "monopolar",
                                on_unknown="drop")
    assert bipolar.names == ("Fpz-Cz", "Pz-Oz")
    np.testing.assert_array_equal(bipolar.matrix, [[1, 0, 0], [0, 1, 0]])
    derived = build_channel_map(["Fpz", "Cz", "Pz", "Oz"], ["Fpz-Cz", "Pz-Oz"])
    np.testing.assert_array_equal(derived.matrix, [[1, -1, 0, 0], [0, 0, 1, -1]])
    bcic = ["Fz", "FC3", "FC1", "FCz", "C3", "Cz", "CP3", "POz"]
    cmap = build_channel_map(bcic, ["CP3-POz", ("FC3", "C3"), "T3-T5"][:2])
    assert cmap.names == ("CP3-POz", "FC3-C3")
    assert cmap.matrix[0, bcic.index("CP3")] == 1 and cmap.matrix[0, bcic.index("POz")] == -1
    old = build_channel_map(["T3", "T5"], ["T3-T5"])
    assert old.names == ("T7-P7",)


def test_duplicates_and_extra_positions() -> None:
    cmap = build_channel_map(["T3", "T7", "Cz"], "monopolar")
    assert cmap.names == ("T7", "Cz")
    assert "duplicate" in cmap.dropped["T7"]
    custom = build_channel_map(["Cz", "MyElec"], "monopolar",
                               extra_positions={"MyElec": (0.0, 0.05, 0.09)})
    assert custom.names == ("Cz", "MyElec")
    np.testing.assert_allclose(custom.positions[1], [0.0, 0.05, 0.09])
    assert isinstance(custom, ChannelMap)


def _tcp() -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(f"{a}-{b}" for a, b in TCP_PAIRS)
    return names, np.array([channel_position(n) for n in names])


def test_every_paper_tcp_channel_gets_a_group_in_every_scheme() -> None:
    names, pos = _tcp()
    for scheme in ("functional", "hemisphere", "sagittal", "coronal", "mean"):
        groups = pooling_groups(names, pos, scheme)
        assert groups.mask.shape == (len(groups.names), 20)
        assert groups.mask.any(axis=0).all(), scheme
        assert groups.mask.any(axis=1).all(), scheme
    functional = pooling_groups(names, pos, "functional")
    assert functional.names == ("Frontal", "Central-Parietal", "Occipital", "Temporal-L",
                                "Temporal-R")
    member = {n: {g for g, row in zip(functional.names, functional.mask) if row[i]}
              for i, n in enumerate(names)}
    assert member["Fp1-F7"] == {"Frontal"}
    assert member["F7-T7"] == {"Frontal", "Temporal-L"}
    assert member["P8-O2"] == {"Temporal-R", "Occipital"}
    assert member["C3-Cz"] == {"Central-Parietal"}
    assert member["C4-T8"] == {"Central-Parietal", "Temporal-R"}
    sagittal = pooling_groups(names, pos, "sagittal")
    assert sagittal.mask.sum(axis=1).tolist() == [4, 4, 4, 4, 4]
    assert sagittal.mask[:, names.index("T7-C3")].tolist() == [0, 0, 1, 0, 0]


def test_hemisphere_midline_and_custom_position_fallback() -> None:
    names = ("Fp1", "Cz", "O2", "Custom")
    pos = np.array([channel_position(n) for n in names[:3]] + [[-0.03, 0.085, -0.005]])
    hemi = pooling_groups(names, pos, "hemisphere")
    assert hemi.names == ("Left", "Right")
    assert hemi.mask.tolist() == [[True, True, False, True], [False, True, True, False]]
    functional = pooling_groups(names, pos, "functional")
    frontal = functional.mask[functional.names.index("Frontal")]
    assert frontal[3]  # nearest named electrode is Fp1
    assert pooling_groups(names, pos, "mean").mask.all()


@pytest.mark.parametrize("scheme", ["functional", "hemisphere", "sagittal", "coronal", "mean"])
def test_pooling_groups_permute_with_channels(scheme: str) -> None:
    rec_names = build_channel_map(read_recording(EEGMAT).ch_names, "monopolar").names
    names = rec_names + ("Fp1-F7", "P8-O2")
    pos = np.array([channel_position(n) for n in names])
    perm = np.random.default_rng(0).permutation(len(names))
    base = pooling_groups(names, pos, scheme)
    permuted = pooling_groups([names[i] for i in perm], pos[perm], scheme)
    assert permuted.names == base.names
    np.testing.assert_array_equal(permuted.mask, base.mask[:, perm])


def test_pooling_groups_rejects_unknown_scheme_and_drops_empty_groups() -> None:
    with pytest.raises(NeuriptError, match="scheme"):
        pooling_groups(["Cz"], np.zeros((1, 3)), "lobes")
    muse = ("TP9", "AF7", "AF8", "TP10")
    groups = pooling_groups(muse, np.array([channel_position(n) for n in muse]), "functional")
    assert groups.names == ("Frontal", "Temporal-L", "Temporal-R")


@pytest.mark.parametrize(
    ("raw", "kind"),
    [("ECG ECG", "ecg"), ("EEG A2-A1", "ref"), ("EEG Fp1", "eeg"), ("Right AUX", "misc"),
     ("Status", "stim"), ("STI 014", "stim"), ("EOG horizontal", "eog"),
     ("EMG submental", "emg"), ("Resp oro-nasal", "resp"), ("TP9", "eeg"), ("T3", "eeg")],
)
def test_channel_kind(raw: str, kind: str) -> None:
    assert channel_kind(raw) == kind
