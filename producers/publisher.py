"""Publish frames and camera status to Kafka: fitted to the size limit, keyed
by camera id, acknowledged through delivery callbacks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt
from confluent_kafka import KafkaError, Message, Producer

from producers.metrics import FAILED, LAST_FRAME_AGE, PUBLISHED, PUBLISHED_BYTES
from schemas.codec import AvroCodec
from schemas.records import CameraStatus, Frame

log = logging.getLogger("pantau.producers.publisher")

# Room for the Avro fields around the image and the record overhead on the broker.
_ENVELOPE_BYTES = 1024
_MIN_SIDE_PX = 64


class FrameTooLargeError(ValueError):
    """An image that cannot be made small enough for the frame size limit."""


def fit_jpeg(
    image_bgr: npt.NDArray[np.uint8], max_side_px: int, quality: int, max_bytes: int
) -> tuple[bytes, tuple[int, int]]:
    """JPEG bytes of the image no longer than ``max_side_px`` on its longer side
    and no larger than ``max_bytes``: too-large frames are downscaled further,
    never dropped. Returns the bytes and the encoded (width, height)."""
    height, width = image_bgr.shape[:2]
    scale = min(1.0, max_side_px / max(height, width))
    while True:
        size_wh = (max(1, round(width * scale)), max(1, round(height * scale)))
        resized = image_bgr
        if scale < 1.0:
            resized = np.asarray(
                cv2.resize(image_bgr, size_wh, interpolation=cv2.INTER_AREA), np.uint8
            )
        ok, buffer = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise FrameTooLargeError(f"JPEG encoding failed for {size_wh}")
        if len(buffer) <= max_bytes:
            return buffer.tobytes(), size_wh
        if max(size_wh) <= _MIN_SIDE_PX:
            raise FrameTooLargeError(
                f"frame does not fit in {max_bytes} bytes even at {size_wh} px "
                f"({len(buffer)} bytes); raise producers.max_frame_bytes"
            )
        scale *= 0.75


class FramePublisher:
    """Shared by every camera sampler of one process (the producer is
    thread-safe). When the local buffer is full, publishing waits, polling the
    producer, instead of dropping frames."""

    def __init__(
        self,
        producer: Producer,
        frames_codec: AvroCodec,
        status_codec: AvroCodec,
        max_frame_bytes: int,
        stop: threading.Event,
    ) -> None:
        self.producer = producer
        self._frames_codec = frames_codec
        self._status_codec = status_codec
        self.max_image_bytes = max_frame_bytes - _ENVELOPE_BYTES
        self._stop = stop
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def publish_frame(self, frame: Frame) -> None:
        """Queue one frame; its delivery is counted in the metrics."""
        camera_id = frame["camera_id"]
        value = self._frames_codec.encode(frame)
        captured_at_s = frame["captured_at_ms"] / 1000

        def delivered(error: KafkaError | None, message: Message) -> None:
            self._count(error)
            if error is None:
                PUBLISHED.labels(camera_id).inc()
                PUBLISHED_BYTES.labels(camera_id).inc(len(value))
                LAST_FRAME_AGE.mark(camera_id, captured_at_s)
            else:
                FAILED.labels(camera_id).inc()
                log.error(
                    "frame not delivered camera=%s seq=%s code=%s reason=%s",
                    camera_id,
                    frame["frame_seq"],
                    error.name(),
                    error.str(),
                )

        self._produce(self._frames_codec.topic, camera_id, value, delivered)

    def publish_status(self, status: CameraStatus) -> None:
        """Queue one camera-status message."""

        def delivered(error: KafkaError | None, message: Message) -> None:
            self._count(error)
            if error is not None:
                log.error(
                    "camera status not delivered camera=%s reason=%s",
                    status["camera_id"],
                    error.str(),
                )

        value = self._status_codec.encode(status)
        self._produce(self._status_codec.topic, status["camera_id"], value, delivered)

    def _count(self, error: KafkaError | None) -> None:
        with self._lock:
            if error is None:
                self.delivered += 1
            else:
                self.failed += 1

    def _produce(
        self,
        topic: str,
        key: str,
        value: bytes,
        on_delivery: Callable[[KafkaError | None, Message], None],
    ) -> None:
        waited = False
        while True:
            try:
                self.producer.produce(
                    topic, key=key.encode(), value=value, on_delivery=on_delivery
                )
                break
            except BufferError:
                if self._stop.is_set():
                    log.warning(
                        "stopping with a full buffer; frame not queued camera=%s", key
                    )
                    return
                if not waited:
                    log.warning(
                        "local buffer full, waiting for the broker camera=%s", key
                    )
                    waited = True
                self.producer.poll(0.1)
        self.producer.poll(0)
