"""Inference: decode sampled frames, run the models, publish detection events."""
