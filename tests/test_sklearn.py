"""scikit-learn estimators on real motor-imagery epochs: API checks, CV, Pipeline, clone, pickle."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks

from _finetune_data import MICRO
from _mne_data import RUNS, mi_epochs, mi_raw
from neuript.data.tasks.epochs import task_from_epochs
from neuript.sklearn import BandPowerClassifier, NeurIPTClassifier

API_CHECKS = (
    "check_estimator_cloneable", "check_estimator_repr", "check_estimator_tags_renamed",
    "check_valid_tag_types", "check_no_attributes_set_in_init", "check_mixin_order",
    "check_parameters_default_constructible", "check_get_params_invariance", "check_set_params",
    "check_do_not_raise_errors_in_init_or_set_params", "check_estimators_unfitted",
    "check_fit1d",
)
"""The sklearn checks that need no fit on 2-D data (the others draw (n_samples, n_features)
arrays, which are not epochs; see the neuript.sklearn module docstring)."""


def micro(**changes) -> NeurIPTClassifier:
    """A micro NeurIPT trained for one epoch on one thread."""
    base = dict(preset="tiny", model_overrides=MICRO, epochs=1, batch_size=16, threads=1,
                device="cpu")
    return NeurIPTClassifier(**{**base, **changes})


def volts(x: np.ndarray) -> np.ndarray:
    """A no-op pipeline step (module level, so the pipeline pickles)."""
    return np.asarray(x, dtype=np.float64)


@pytest.fixture(scope="module")
def mi():
    return mi_epochs(2.0)


@pytest.fixture(scope="module")
def fitted(mi):
    epochs, y, groups = mi
    return micro().fit(epochs, y, groups=groups)


@pytest.mark.parametrize("check", API_CHECKS)
@pytest.mark.parametrize("make", [NeurIPTClassifier, BandPowerClassifier])
def test_sklearn_api_checks(make, check):
    est = make()
    getattr(estimator_checks, check)(type(est).__name__, est)
    tags = est.__sklearn_tags__()
    assert tags.input_tags.three_d_array and not tags.input_tags.two_d_array


def test_fit_on_epochs_gives_probabilities_over_string_classes(fitted, mi):
    epochs, y, _ = mi
    assert fitted.classes_.tolist() == ["left", "right"]
    proba = fitted.predict_proba(epochs)
    assert proba.shape == (len(epochs), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.array_equal(fitted.predict(epochs), fitted.classes_[proba.argmax(axis=1)])
    assert fitted.score(epochs, y) == pytest.approx(np.mean(fitted.predict(epochs) == y))
    assert fitted.ch_names_ == ("C3", "Cz", "C4", "FC3", "FC4", "CP3", "CP4", "Pz")
    assert fitted.window_samples_ == 128 and fitted.model_dir_ is None


def test_array_input_equals_epochs_input_and_fit_is_idempotent(fitted, mi):
    epochs, y, groups = mi
    est = micro(ch_names=epochs.ch_names, sfreq=epochs.info["sfreq"])
    params = est.get_params()
    X = epochs.get_data()
    proba = est.fit(X, y, groups).predict_proba(X)
    assert est.get_params() == params  # fit does not touch the parameters
    np.testing.assert_allclose(proba, fitted.predict_proba(epochs), rtol=1e-6)
    np.testing.assert_allclose(est.fit(X, y, groups).predict_proba(X), proba, rtol=1e-6)
    with pytest.raises(ValueError, match="fitted on"):
        est.set_params(ch_names=epochs.ch_names[::-1]).predict(X)


def test_windows_equal_the_epochs_task(fitted, mi):
    epochs, _, groups = mi
    task = task_from_epochs(epochs, subjects=[str(g) for g in groups], montage="auto")
    np.testing.assert_allclose(fitted.epoch_windows(epochs), task.signals, rtol=1e-5, atol=1e-4)


def test_clone_and_pickle_round_trip(fitted, mi):
    epochs, _, _ = mi
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params() and not hasattr(copy, "model_")
    est = micro(lr=1e-3).set_params(epochs=2, model_overrides={"d_model": 8})
    assert clone(est).get_params()["model_overrides"] == {"d_model": 8}
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(epochs), fitted.predict_proba(epochs))


@pytest.mark.parametrize("make", [micro, BandPowerClassifier])
def test_cross_val_score_with_group_kfold(make, mi):
    epochs, y, groups = mi
    scores = cross_val_score(make(), epochs, y, groups=groups, cv=GroupKFold(n_splits=3),
                             params={"groups": groups})
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))


def test_in_a_pipeline_with_array_input(mi):
    epochs, y, groups = mi
    X = epochs.get_data()
    for est in (micro(), BandPowerClassifier()):
        pipe = make_pipeline(FunctionTransformer(volts),
                             est.set_params(ch_names=epochs.ch_names, sfreq=160.0))
        pipe.fit(X, y, **{f"{pipe.steps[-1][0]}__groups": groups})
        assert pipe.predict(X).shape == (len(y),)
        assert 0.0 <= pipe.score(X, y) <= 1.0
        assert pickle.loads(pickle.dumps(pipe)).predict(X).tolist() == pipe.predict(X).tolist()


def test_band_power_learns_motor_imagery_on_its_training_epochs(mi):
    epochs, y, groups = mi
    est = BandPowerClassifier().fit(epochs, y, groups)
    assert est.model_.c_ in est.cs
    assert est.score(epochs, y) > 0.75  # 8 sensorimotor channels, mu/beta power: separable
    assert est.epoch_windows(epochs).shape == (len(y), 8, 128)


def test_hold_out_takes_whole_groups_and_the_run_is_kept(mi, tmp_path):
    import neuript

    epochs, y, groups = mi
    est = micro(out_dir=str(tmp_path / "run")).fit(epochs, y, groups)
    manifest = json.loads((tmp_path / "run" / "split_manifest.json").read_text())
    val_subjects = {row[2] for row in manifest["rows"] if row[4] == "val"}
    train_subjects = {row[2] for row in manifest["rows"] if row[4] == "train"}
    assert len(val_subjects) == 1 and not val_subjects & train_subjects
    assert val_subjects <= {str(r) for r in RUNS}
    # the kept model folder serves neuript.predict on a continuous MNE Raw
    result = neuript.predict(mi_raw(RUNS[0]), est.model_dir_, device="cpu")
    assert set(result.rows["predicted"]) <= {"left", "right"}
    assert result.summary["window_s"] == 2.0


def test_user_errors_are_clear(mi):
    epochs, y, groups = mi
    X = epochs.get_data()
    with pytest.raises(ValueError, match="ch_names= and sfreq="):
        BandPowerClassifier().fit(X, y)
    named = BandPowerClassifier(ch_names=epochs.ch_names, sfreq=160.0)
    with pytest.raises(ValueError, match="NaN"):
        named.fit(np.where(np.arange(X.shape[2]) == 5, np.nan, X), y)
    with pytest.raises(ValueError, match="n_epochs, n_channels, n_times"):
        named.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="no epochs"):
        named.fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="at least 2 classes"):
        named.fit(X, np.full(len(y), "left"))
    with pytest.raises(ValueError, match="val_fraction"):
        named.set_params(val_fraction=1.5).fit(X, y)
    with pytest.raises(ValueError, match="differs from the Epochs"):
        BandPowerClassifier(sfreq=250.0).fit(epochs, y)
    with pytest.raises(ValueError, match="may not set"):
        micro(finetune_options={"seeds": (1, 2)}).fit(epochs, y)
    with pytest.raises(NotFittedError):
        micro().predict_proba(epochs)
