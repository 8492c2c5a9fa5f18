"""Read frames from a camera URL or a video file with OpenCV."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

import cv2
import numpy as np
import numpy.typing as npt

from pantau.redact import redact_url

log = logging.getLogger("pantau.producers.source")


class SourceUnavailableError(RuntimeError):
    """A camera or video file that cannot be opened or read."""


def _open_target(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return parsed.path
    return url


class VideoSource:
    """Frames from one camera. Video files are read at their own frame rate, so
    sampling every N seconds skips N seconds of footage; a looping file restarts
    at its end like a camera that never stops."""

    def __init__(self, url: str, *, loop: bool) -> None:
        self._url = url
        self._target = _open_target(url)
        self._loop = loop
        self._capture: cv2.VideoCapture | None = None
        self.is_file = Path(self._target).exists()
        self.fps = 0.0

    def open(self) -> None:
        """Open the source; raise SourceUnavailableError naming it (redacted)."""
        capture = cv2.VideoCapture(self._target)
        if not capture.isOpened():
            capture.release()
            raise SourceUnavailableError(
                f"cannot open video source {redact_url(self._url)}: check the URL, "
                "the credentials and that the camera is reachable"
            )
        self._capture = capture
        self.fps = float(capture.get(cv2.CAP_PROP_FPS)) or 25.0

    def close(self) -> None:
        """Release the source."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def next_frame(self, skip_s: float) -> npt.NDArray[np.uint8] | None:
        """The next frame, ``skip_s`` of footage after the previous one for files;
        None when a non-looping file has ended."""
        if self._capture is None:
            self.open()
        assert self._capture is not None
        skip_frames = max(0, round(skip_s * self.fps) - 1) if self.is_file else 0
        for _ in range(skip_frames):
            if not self._capture.grab():
                break
        ok, image = self._capture.read()
        if not ok and self.is_file and self._loop:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self._capture.read()
        if not ok:
            if self.is_file:
                return None
            raise SourceUnavailableError(
                f"video source {redact_url(self._url)} stopped delivering frames"
            )
        return np.asarray(image, np.uint8)
