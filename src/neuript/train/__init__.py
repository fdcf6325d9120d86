"""Training, fine-tuning, evaluation and the field's metrics."""
