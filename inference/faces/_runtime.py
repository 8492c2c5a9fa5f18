"""What both face models share: how a model file is checked and a failed load
reported."""

from __future__ import annotations

from pathlib import Path

from infra.models.faces_fetch import sha256_of
from pantau.errors import ModelLoadError

__all__ = ["FETCH_HINT", "ModelLoadError", "check_model_file"]

FETCH_HINT = "run `pantau models fetch` to download it into the cache"


def check_model_file(path: Path, expected_sha256: str, what: str) -> None:
    """Raise ModelLoadError unless `path` is a file with the expected sha256."""
    if not path.is_file():
        raise ModelLoadError(f"{what}: model file {path} does not exist; {FETCH_HINT}")
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise ModelLoadError(
            f"{what}: model file {path} has sha256 {actual}, expected "
            f"{expected_sha256}; delete it and {FETCH_HINT}"
        )
