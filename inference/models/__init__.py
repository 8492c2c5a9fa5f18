"""Detector models that run in PyTorch from weights in the local model cache."""
