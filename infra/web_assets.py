"""Fetch the web page's chart library from the npm registry into the cache.

The monitoring page draws its charts with Chart.js, served by Pantau itself from
the cache: the browser never reaches a CDN. `npm pack` downloads the published
tarball; the tarball and the extracted files are checked against pinned SHA-256
digests, as for the model weights.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from infra.models._download import extract_tar_files, fetch_npm_files, sha256_of

CHARTJS_PACKAGE = "chart.js"
CHARTJS_VERSION = "4.6.1"
CHARTJS_TARBALL_SHA256 = (
    "9345dacdf4bb4c5d40321f4b9aafab6fe676d37a534fc0bc2d17c4c4e29c4f00"
)
CHARTJS_FILE = "chart.umd.min.js"
CHARTJS_FILE_SHA256 = {
    CHARTJS_FILE: "87364cc2b2a76a6684929e7d6b80b18a897794db38400caff1fcf1791c6925d2",
}
_NPM_TIMEOUT_S = 300.0


def chartjs_dir(cache_dir: Path) -> Path:
    """The folder under ``cache_dir`` that holds Chart.js."""
    return cache_dir / "web" / f"chartjs-{CHARTJS_VERSION}"


def chartjs_is_cached(cache_dir: Path) -> bool:
    """Whether Chart.js is in the cache with its pinned digest."""
    path = chartjs_dir(cache_dir) / CHARTJS_FILE
    return path.is_file() and sha256_of(path) == CHARTJS_FILE_SHA256[CHARTJS_FILE]


def fetch_chartjs(cache_dir: Path) -> Path:
    """Chart.js's browser build in the cache, fetched with npm if missing."""
    target = chartjs_dir(cache_dir)
    if chartjs_is_cached(cache_dir):
        return target / CHARTJS_FILE

    def extract(archive: tarfile.TarFile, staging: Path) -> None:
        extract_tar_files(archive, "package/dist", [CHARTJS_FILE], staging)

    fetch_npm_files(
        "Chart.js",
        f"{CHARTJS_PACKAGE}@{CHARTJS_VERSION}",
        tarball_sha256=CHARTJS_TARBALL_SHA256,
        target=target,
        files_sha256=CHARTJS_FILE_SHA256,
        extract=extract,
        needed_for="fetch the web page's chart library",
        timeout_s=_NPM_TIMEOUT_S,
        replace_existing=True,
    )
    return target / CHARTJS_FILE
