"""Sample one camera on its schedule and publish each frame as an Avro record."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import cv2
import numpy as np
import numpy.typing as npt
from prometheus_client import Counter

from pantau.config import CameraConfig
from pantau.delivery import DeliveryTracker
from producers.source import SourceUnavailableError, VideoSource
from schemas.codec import AvroCodec
from schemas.records import CameraState, CameraStatus, Frame

log = logging.getLogger("pantau.producers")

SAMPLED = Counter("pantau_frames_sampled_total", "Frames sampled", ["camera"])
SAMPLED_BYTES = Counter("pantau_frame_bytes_total", "JPEG bytes published", ["camera"])


def encode_jpeg(
    image_bgr: npt.NDArray[np.uint8], max_side_px: int, quality: int
) -> tuple[bytes, tuple[int, int]]:
    """JPEG bytes of the image shrunk to ``max_side_px``, and the encoded (w, h)."""
    height, width = image_bgr.shape[:2]
    scale = min(1.0, max_side_px / max(height, width))
    if scale < 1.0:
        width, height = round(width * scale), round(height * scale)
        image_bgr = np.asarray(
            cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_AREA),
            np.uint8,
        )
    ok, buffer = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for an image of {width}x{height}")
    return buffer.tobytes(), (width, height)


class CameraSampler:
    """Publishes one frame of a camera every ``sample_interval_s`` inside its
    active hours, keyed by camera id."""

    def __init__(
        self,
        *,
        camera: CameraConfig,
        tracker: DeliveryTracker,
        codec: AvroCodec,
        status_codec: AvroCodec,
        max_side_px: int,
        jpeg_quality: int,
        stop: threading.Event,
        max_frames: int | None = None,
    ) -> None:
        self._camera = camera
        self._tracker = tracker
        self._codec = codec
        self._status_codec = status_codec
        self._state: CameraState | None = None
        self._last_frame_at_ms: int | None = None
        self._max_side_px = max_side_px
        self._jpeg_quality = jpeg_quality
        self._stop = stop
        self._max_frames = max_frames
        self.published = 0

    def run(self) -> None:
        """Sample until stopped, out of frames, or ``max_frames`` are published."""
        camera = self._camera
        source = VideoSource(camera.source_url, loop=camera.loop)
        interval_s = camera.sample_interval_s
        next_due = time.monotonic()
        log.info(
            "sampling camera=%s source=%s interval_s=%s",
            camera.id,
            camera.display_url,
            interval_s,
        )
        try:
            while not self._stop.is_set():
                if self._max_frames is not None and self.published >= self._max_frames:
                    break
                if self._stop.wait(max(0.0, next_due - time.monotonic())):
                    break
                next_due += interval_s
                if not camera.is_active(datetime.now(UTC)):
                    self._set_state("INACTIVE", "outside the camera's active hours")
                    continue
                try:
                    image = source.next_frame(interval_s)
                except SourceUnavailableError as error:
                    log.warning("camera=%s unavailable: %s", camera.id, error)
                    self._set_state("OFFLINE", str(error))
                    source.close()
                    next_due = time.monotonic() + min(30.0, max(1.0, interval_s))
                    continue
                if image is None:
                    log.info("camera=%s source ended", camera.id)
                    break
                self._publish(image)
                self._set_state("ONLINE", None)
        finally:
            source.close()
            log.info("camera=%s stopped frames=%s", camera.id, self.published)

    def _set_state(self, state: CameraState, reason: str | None) -> None:
        """Publish a camera-status message when the state changes."""
        if state == self._state:
            return
        self._state = state
        log.info("camera=%s state=%s reason=%s", self._camera.id, state, reason)
        status: CameraStatus = {
            "camera_id": self._camera.id,
            "state": state,
            "changed_at_ms": int(time.time() * 1000),
            "reason": reason,
            "last_frame_at_ms": self._last_frame_at_ms,
        }
        self._tracker.producer.produce(
            self._status_codec.topic,
            key=self._camera.id.encode(),
            value=self._status_codec.encode(status),
            on_delivery=self._tracker.on_delivery,
        )

    def _publish(self, image: npt.NDArray[np.uint8]) -> None:
        captured_at_ms = int(time.time() * 1000)
        jpeg, (width, height) = encode_jpeg(
            image, self._max_side_px, self._jpeg_quality
        )
        frame: Frame = {
            "camera_id": self._camera.id,
            "frame_seq": self.published,
            "captured_at_ms": captured_at_ms,
            "published_at_ms": int(time.time() * 1000),
            "width_px": width,
            "height_px": height,
            "content_type": "image/jpeg",
            "image": jpeg,
        }
        self._tracker.producer.produce(
            self._codec.topic,
            key=self._camera.id.encode(),
            value=self._codec.encode(frame),
            on_delivery=self._tracker.on_delivery,
        )
        self._tracker.producer.poll(0)
        self._last_frame_at_ms = captured_at_ms
        self.published += 1
        SAMPLED.labels(self._camera.id).inc()
        SAMPLED_BYTES.labels(self._camera.id).inc(len(jpeg))
        log.debug(
            "frame published camera=%s seq=%s bytes=%s",
            self._camera.id,
            frame["frame_seq"],
            len(jpeg),
        )
