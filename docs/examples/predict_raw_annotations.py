"""MNE Raw → NeurIPT prediction → annotations on the Raw.

Fine-tune ``neuript-small`` on rest-vs-arithmetic epochs of three EEGMAT subjects (the
scikit-learn estimator keeps its run folder with ``out_dir=``), then classify every 5-s window
of an unseen subject's recording held as an ``mne.io.Raw`` and draw the predictions on it.

Run: ``python docs/examples/predict_raw_annotations.py [OUT_DIR]``
"""

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import mne  # noqa: E402
import numpy as np  # noqa: E402
from _data import eegmat, eegmat_epochs  # noqa: E402

import neuript  # noqa: E402
from neuript.sklearn import NeurIPTClassifier  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp())
parts = eegmat_epochs(subjects=(0, 1, 2))
epochs = mne.concatenate_epochs([p[0] for p in parts], verbose="error")
labels = np.concatenate([p[1] for p in parts])
subjects = np.concatenate([p[2] for p in parts])

clf = NeurIPTClassifier(init="neuript-small", epochs=2, seed=0, threads=1,
                        out_dir=str(out / "run"))
clf.fit(epochs, labels, groups=subjects)
print(f"fitted: best epoch {clf.best_epoch_}, validation balanced accuracy "
      f"{clf.val_metrics_['balanced_accuracy']:.3f}; model folder {clf.model_dir_}")

raw = mne.io.read_raw_edf(eegmat(33, 2), preload=True, verbose="error")  # arithmetic, unseen
result = neuript.predict(raw, clf.model_dir_)
print(result.rows.head())
print("windows per predicted class:", result.summary["class_counts"])

raw.set_annotations(result.to_annotations())
fig = raw.plot(duration=60.0, n_channels=8, show=False)
fig.savefig(out / "predictions_on_raw.png", dpi=80)
print(f"wrote {out / 'predictions_on_raw.png'}")
