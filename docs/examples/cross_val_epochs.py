"""Labelled Epochs → ``cross_val_score`` with ``GroupKFold``: NeurIPT beside band power.

Rest vs mental arithmetic on 6 EEGMAT subjects, 5-s epochs, 3 folds by subject; both
estimators take the same ``mne.Epochs`` and the same groups (also for their inner hold-out).
A short demonstration budget (2 fine-tuning epochs): the benchmarks (``make bench``) are where
the real comparison lives.

Run: ``python docs/examples/cross_val_epochs.py``
"""

import mne
import numpy as np
from _data import eegmat_epochs
from sklearn.model_selection import GroupKFold, cross_val_score

from neuript.sklearn import BandPowerClassifier, NeurIPTClassifier

parts = eegmat_epochs(subjects=range(6))
epochs = mne.concatenate_epochs([p[0] for p in parts], verbose="error")
y = np.concatenate([p[1] for p in parts])
groups = np.concatenate([p[2] for p in parts])
cv = GroupKFold(n_splits=3)

for name, clf in (("band power + LR", BandPowerClassifier()),
                  ("NeurIPT (neuript-small)", NeurIPTClassifier(init="neuript-small", epochs=2,
                                                                seed=0, threads=1))):
    scores = cross_val_score(clf, epochs, y, groups=groups, cv=cv, scoring="balanced_accuracy",
                             params={"groups": groups})
    print(f"{name:26s} balanced accuracy per fold {np.round(scores, 3)}, "
          f"mean {scores.mean():.3f}")
