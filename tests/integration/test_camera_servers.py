"""The loopback camera servers against OpenCV's FFmpeg backend, the reader the
frame samplers use: if these pass, a sampler test can trust its camera."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from infra.ports import port_is_free
from tests.camera_servers import (
    HlsServer,
    MjpegServer,
    RtspServer,
    ffmpeg_missing_reason,
    rtsp_missing_reason,
)

pytestmark = pytest.mark.integration

Image = npt.NDArray[np.uint8]
VTEST_SHAPE = (576, 768, 3)
CREDENTIALS = ("operator", "s3cret:with colon")


def _open(url: str) -> cv2.VideoCapture:
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG)


def _read(capture: cv2.VideoCapture, count: int) -> list[Image]:
    frames: list[Image] = []
    for _ in range(count):
        ok, image = capture.read()
        assert ok, f"frame {len(frames)} of {count} could not be read"
        frames.append(np.asarray(image, np.uint8))
    return frames


def _read_url(url: str, count: int) -> list[Image]:
    capture = _open(url)
    try:
        assert capture.isOpened(), f"OpenCV could not open {url}"
        return _read(capture, count)
    finally:
        capture.release()


def _get(url: str, authorization: str | None = None) -> tuple[int, str, bytes]:
    """Status, Content-Type and body of GET `url`, errors included."""
    request = urllib.request.Request(url)
    if authorization is not None:
        request.add_header("Authorization", authorization)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"] or "", error.read()


def _decode(jpeg: bytes) -> Image | None:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image, np.uint8)


@pytest.fixture
def mjpeg() -> Iterator[MjpegServer]:
    with MjpegServer() as camera:
        yield camera


# --- MJPEG and snapshots ------------------------------------------------------------


def test_mjpeg_stream_plays_the_footage_in_real_time(mjpeg: MjpegServer) -> None:
    capture = _open(mjpeg.url())
    try:
        assert capture.isOpened()
        _read(capture, 1)
        started = time.monotonic()
        frames = _read(capture, 6)
        elapsed_s = time.monotonic() - started
    finally:
        capture.release()

    assert all(frame.shape == VTEST_SHAPE for frame in frames)
    assert not np.array_equal(frames[0], frames[-1]), "the people should move"
    # Six frame periods at 10 fps, give or take the one already buffered.
    assert 0.35 < elapsed_s < 1.5
    assert mjpeg.stream_requests == 1


def test_snapshot_is_the_current_frame_as_jpeg(mjpeg: MjpegServer) -> None:
    status, content_type, body = _get(mjpeg.url("/snapshot.jpg"))

    assert (status, content_type) == (200, "image/jpeg")
    image = _decode(body)
    assert image is not None and image.shape == VTEST_SHAPE
    assert _get(mjpeg.url("/nothing-here"))[0] == 404


def test_basic_auth_keeps_out_wrong_credentials() -> None:
    with MjpegServer(auth=CREDENTIALS) as camera:
        snapshot = camera.url("/snapshot.jpg", credentials=False)
        wrong = "Basic b3BlcmF0b3I6d3Jvbmc="  # operator:wrong
        assert _get(snapshot)[0] == 401
        assert _get(snapshot, authorization=wrong)[0] == 401

        wrong_url = camera.url(credentials=False).replace("//", "//operator:no@")
        refused = _open(wrong_url)
        assert not refused.isOpened()
        refused.release()

        # FFmpeg answers the 401 challenge with the URL's user and password.
        frames = _read_url(camera.url(), 2)
        assert frames[0].shape == VTEST_SHAPE
        assert camera.stream_requests == 1


def test_frozen_feed_repeats_one_frame() -> None:
    with MjpegServer(frozen=True) as camera:
        first = _get(camera.url("/snapshot.jpg"))[2]
        frames = _read_url(camera.url(), 4)
        last = _get(camera.url("/snapshot.jpg"))[2]

    assert first == last
    assert all(np.array_equal(frames[0], frame) for frame in frames[1:])


def test_corrupt_snapshot_can_be_switched_on_and_off(mjpeg: MjpegServer) -> None:
    mjpeg.corrupt_snapshot = True
    status, content_type, body = _get(mjpeg.url("/snapshot.jpg"))
    assert (status, content_type) == (200, "image/jpeg")
    assert _decode(body) is None

    mjpeg.corrupt_snapshot = False
    assert _decode(_get(mjpeg.url("/snapshot.jpg"))[2]) is not None


def test_stop_cuts_the_stream_and_restart_serves_the_same_port(
    mjpeg: MjpegServer,
) -> None:
    capture = _open(mjpeg.url())
    try:
        _read(capture, 2)
        mjpeg.stop()
        assert port_is_free(mjpeg.port)
        # What FFmpeg had buffered may still come out, then the reads fail.
        deadline = time.monotonic() + 3
        while capture.read()[0]:
            assert time.monotonic() < deadline, "reads kept succeeding after stop()"
    finally:
        capture.release()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(mjpeg.url("/snapshot.jpg"), timeout=2)

    mjpeg.restart()
    assert _read_url(mjpeg.url(), 2)[0].shape == VTEST_SHAPE
    assert mjpeg.stream_requests == 2


# --- HLS ----------------------------------------------------------------------------


def test_hls_live_playlist_plays_in_opencv() -> None:
    reason = ffmpeg_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with HlsServer() as camera:
        status, content_type, body = _get(camera.url())
        assert (status, content_type) == (200, "application/vnd.apple.mpegurl")
        playlist = body.decode()
        assert "#EXT-X-MEDIA-SEQUENCE" in playlist
        assert "#EXT-X-ENDLIST" not in playlist, "a live playlist never ends"

        frames = _read_url(camera.url(), 3)

    assert all(frame.shape == VTEST_SHAPE for frame in frames)
    assert camera.workdir is None, "stop() removes the segments"


# --- RTSP ---------------------------------------------------------------------------


def test_rtsp_with_auth_plays_and_survives_a_restart() -> None:
    reason = rtsp_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with RtspServer(auth=CREDENTIALS) as camera:
        refused = _open(camera.url(credentials=False))
        assert not refused.isOpened()
        refused.release()

        assert _read_url(camera.url(), 2)[0].shape == VTEST_SHAPE

        port = camera.port
        camera.restart()
        assert camera.port == port
        assert _read_url(camera.url(), 2)[0].shape == VTEST_SHAPE
