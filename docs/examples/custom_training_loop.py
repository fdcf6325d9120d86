"""Fine-tune ``neuript-small`` in your own PyTorch loop (as with Lightning, skorch, braindecode).

The module is built from MNE's ``info["chs"]``; band-pass and resampling are done with MNE
before epoching (the module's contract: 0.1–30 Hz, 64 Hz); ``raw_input=True`` takes volts and
applies the µV scaling and A-law inside. The loss adds the MoE auxiliary loss.

Run: ``python docs/examples/custom_training_loop.py``
"""

import mne
import numpy as np
import torch
from _data import eegmat_epochs

from neuript import build_module

torch.manual_seed(0)
parts = eegmat_epochs(subjects=range(4))
for epochs, _, _ in parts:
    epochs.filter(0.1, 30.0, verbose="error").resample(64.0, verbose="error")
epochs = mne.concatenate_epochs([p[0] for p in parts], verbose="error")
y = torch.as_tensor(np.concatenate([p[1] for p in parts]) == "task", dtype=torch.int64)
subjects = np.concatenate([p[2] for p in parts])
x = torch.as_tensor(epochs.get_data(copy=True)[:, :, :320], dtype=torch.float32)  # (N, C, T) V

module = build_module(n_chans=x.shape[1], n_outputs=2, n_times=x.shape[2], sfreq=64.0,
                      chs_info=epochs.info["chs"], init="neuript-small", raw_input=True)
train, test = subjects != 3, subjects == 3
weights = 1.0 / torch.bincount(y[train]).float()  # rest windows outnumber arithmetic ones
optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
index = torch.arange(len(y))[torch.as_tensor(train)]
for epoch in range(3):
    module.train()
    for batch in index[torch.randperm(len(index))].split(32):
        logits = module(x[batch])
        loss = torch.nn.functional.cross_entropy(logits, y[batch], weight=weights)
        loss = loss + module.aux_weight * module.aux_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    module.eval()
    with torch.no_grad():
        predicted = module(x[torch.as_tensor(test)]).argmax(1)
    truth = y[torch.as_tensor(test)]
    bacc = np.mean([(predicted[truth == k] == k).float().mean().item() for k in (0, 1)])
    print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}, held-out subject balanced "
          f"accuracy {bacc:.3f}")
