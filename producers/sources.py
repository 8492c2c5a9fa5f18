"""Where frames come from: one interface over video files, continuous streams
(RTSP, HTTP MJPEG, HLS) and HTTP snapshot URLs.

Every source returns BGR images; every error names the source with its
credentials redacted.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Literal, Protocol
from urllib.parse import urlparse, urlunparse

import cv2
import numpy as np
import numpy.typing as npt

from pantau.config import CameraConfig
from pantau.redact import redact_url

log = logging.getLogger("pantau.producers.sources")

Image = npt.NDArray[np.uint8]
SourceKind = Literal["file", "stream", "snapshot"]


class SourceUnavailableError(RuntimeError):
    """A camera or file that cannot be opened or stopped delivering frames."""


class FrameSource(Protocol):
    """A camera as the sampler sees it."""

    def open(self) -> None:
        """Connect; raise SourceUnavailableError when the camera cannot be reached."""
        ...

    def read(self, interval_s: float) -> Image | None:
        """The current frame; None when a finite source has ended. Raises
        SourceUnavailableError when the camera stops delivering."""
        ...

    def close(self) -> None:
        """Release the connection; open() may be called again later."""
        ...


def source_kind(camera: CameraConfig) -> SourceKind:
    """How to read the camera's URL."""
    if camera.source_kind != "auto":
        return camera.source_kind
    parsed = urlparse(camera.source_url)
    if parsed.scheme in {"", "file"}:
        return "file"
    if parsed.scheme in {"http", "https"} and parsed.path.lower().endswith(
        (".jpg", ".jpeg")
    ):
        return "snapshot"
    return "stream"


def open_source(
    camera: CameraConfig, *, stale_s: float, snapshot_timeout_s: float
) -> FrameSource:
    """The source for a camera, not yet opened."""
    kind = source_kind(camera)
    if kind == "file":
        return VideoFileSource(camera.source_url, loop=camera.loop)
    if kind == "snapshot":
        return SnapshotSource(camera.source_url, timeout_s=snapshot_timeout_s)
    return StreamSource(camera.source_url, stale_s=stale_s)


def _open_capture(target: str, display: str, timeout_s: float) -> cv2.VideoCapture:
    # Bounded open and read: a camera that accepts the connection and then says
    # nothing must not hold its sampler thread forever.
    timeout_ms = max(1, round(timeout_s * 1000))
    capture = cv2.VideoCapture(
        target,
        cv2.CAP_FFMPEG,
        [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            timeout_ms,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            timeout_ms,
        ],
    )
    if not capture.isOpened():
        capture.release()
        raise SourceUnavailableError(
            f"cannot open video source {display}: check the URL, the credentials "
            "and that the camera is reachable"
        )
    return capture


class VideoFileSource:
    """A recorded video read at its own frame rate: each read skips the footage
    of one sampling interval, so a file behaves like a camera in real time."""

    def __init__(self, url: str, *, loop: bool) -> None:
        parsed = urlparse(url)
        self._path = parsed.path if parsed.scheme == "file" else url
        self._display = redact_url(url)
        self._loop = loop
        self._capture: cv2.VideoCapture | None = None
        self._fps = 25.0

    def open(self) -> None:
        if not Path(self._path).is_file():
            raise SourceUnavailableError(
                f"video file {self._display} does not exist or is not a file"
            )
        self._capture = _open_capture(self._path, self._display, timeout_s=30.0)
        self._fps = float(self._capture.get(cv2.CAP_PROP_FPS)) or 25.0

    def read(self, interval_s: float) -> Image | None:
        if self._capture is None:
            self.open()
        assert self._capture is not None
        for _ in range(max(0, round(interval_s * self._fps) - 1)):
            if not self._capture.grab():
                break
        ok, image = self._capture.read()
        if not ok and self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read()
        return np.asarray(image, np.uint8) if ok else None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class StreamSource:
    """A live stream (RTSP, HTTP MJPEG, HLS) read continuously by a background
    thread, so that a sample is always the newest frame rather than one that
    waited in a decoder buffer."""

    def __init__(self, url: str, *, stale_s: float) -> None:
        self._url = url
        self._display = redact_url(url)
        self._stale_s = stale_s
        self._lock = threading.Lock()
        self._latest: Image | None = None
        self._latest_at = 0.0
        self._failure: str | None = None
        self._stop = threading.Event()
        self._arrived = threading.Condition(self._lock)
        self._frames_seen = 0
        self._frames_returned = 0
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        capture = _open_capture(self._url, self._display, self._stale_s)
        self._stop.clear()
        with self._lock:
            self._frames_seen = self._frames_returned = 0
        self._failure = None
        self._latest, self._latest_at = None, time.monotonic()
        self._thread = threading.Thread(
            target=self._pump, args=(capture,), name="stream-reader", daemon=True
        )
        self._thread.start()

    def _pump(self, capture: cv2.VideoCapture) -> None:
        try:
            while not self._stop.is_set():
                ok, image = capture.read()
                if not ok:
                    with self._lock:
                        self._failure = "the stream ended or the connection dropped"
                        self._arrived.notify_all()
                    return
                with self._lock:
                    self._latest = np.asarray(image, np.uint8)
                    self._latest_at = time.monotonic()
                    self._frames_seen += 1
                    self._arrived.notify_all()
        finally:
            capture.release()

    def read(self, interval_s: float) -> Image | None:
        if self._thread is None:
            self.open()
        # Wait (up to the staleness limit) for a frame newer than the last one
        # returned: streams that arrive in bursts (HLS segments) and slow starts
        # must not look like a camera repeating itself or a broken one.
        with self._lock:
            self._arrived.wait_for(
                lambda: (
                    self._frames_seen > self._frames_returned
                    or self._failure is not None
                ),
                timeout=self._stale_s,
            )
            image, age_s, failure = (
                self._latest,
                time.monotonic() - self._latest_at,
                self._failure,
            )
            self._frames_returned = self._frames_seen
        if failure is not None:
            raise SourceUnavailableError(f"video source {self._display}: {failure}")
        if age_s > self._stale_s:
            raise SourceUnavailableError(
                f"video source {self._display} delivered no frame for "
                f"{age_s:.0f} s (limit {self._stale_s:.0f} s)"
            )
        if image is None:
            raise SourceUnavailableError(
                f"video source {self._display} has not delivered a frame yet"
            )
        return image

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None


class SnapshotSource:
    """An HTTP URL that returns one JPEG per request, polled every interval.
    Credentials in the URL are sent as HTTP basic authentication."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        parsed = urlparse(url)
        self._display = redact_url(url)
        self._timeout_s = timeout_s
        netloc = parsed.hostname or ""
        if parsed.port:
            netloc = f"{netloc}:{parsed.port}"
        self._request_url = urlunparse(parsed._replace(netloc=netloc))
        self._headers = {"User-Agent": "pantau-sampler"}
        if parsed.username is not None:
            token = f"{parsed.username}:{parsed.password or ''}".encode()
            self._headers["Authorization"] = f"Basic {base64.b64encode(token).decode()}"

    def open(self) -> None:
        """Snapshots need no connection; the first read tells if it works."""

    def read(self, interval_s: float) -> Image | None:
        request = urllib.request.Request(self._request_url, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as reply:
                body = reply.read()
        except urllib.error.HTTPError as error:
            raise SourceUnavailableError(
                f"snapshot {self._display} answered HTTP {error.code} {error.reason}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise SourceUnavailableError(
                f"snapshot {self._display} is unreachable: {reason}"
            ) from None
        image = (
            cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
            if body
            else None
        )
        if image is None:
            raise SourceUnavailableError(
                f"snapshot {self._display} returned {len(body)} bytes that are not "
                "an image; expected a JPEG"
            )
        return np.asarray(image, np.uint8)

    def close(self) -> None:
        """Nothing is held between snapshots."""
