"""What both face models share: where they run and how a failed load is reported."""

from __future__ import annotations

from pathlib import Path

import torch

from infra.models.faces_fetch import sha256_of
from pantau.errors import ModelLoadError

__all__ = ["FETCH_HINT", "ModelLoadError", "check_model_file", "pick_device"]

FETCH_HINT = "run `pantau models fetch` to download it into the cache"


def pick_device(device: str | None) -> tuple[torch.device, torch.dtype]:
    """CUDA with float16 when available (or asked for), else CPU with float32."""
    chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = torch.float16 if chosen.type == "cuda" else torch.float32
    return chosen, dtype


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
