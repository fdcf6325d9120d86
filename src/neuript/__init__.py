"""neuript: NeurIPT, the EEG foundation model for neural interfaces, as a toolkit.

The flow: ``read_recording`` → montage → preprocessing → window corpus → AAMP pretraining →
IILP fine-tuning → evaluation → prediction on new recordings. See the README for the CLI.
"""

__version__ = "0.1.0"
