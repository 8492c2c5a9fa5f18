"""The inference consumer: frames in, detection events out, at least once.

Offsets are committed only after every event (and dead letter) of a batch has been
acknowledged by the broker; a redelivered frame yields the same event id, so
downstream stages drop the duplicate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt
from confluent_kafka import Consumer, Message, TopicPartition
from prometheus_client import Counter, Histogram

from inference.analysis import Analyzer, FrameAnalysis
from inference.annotate import annotate
from inference.decode import FrameDecodeError, decode_jpeg
from inference.events import build_detection_event
from pantau.config import CameraConfig
from pantau.dead_letter import DeadLetterPublisher
from pantau.delivery import DeliveryFailedError, DeliveryTracker
from pantau.kafka import commit_done, message_error
from schemas.codec import AvroCodec, MessageDecodeError
from schemas.records import Frame, Region

log = logging.getLogger("pantau.inference")

FRAMES = Counter(
    "pantau_inference_frames_total", "Frames taken from Kafka by outcome", ["outcome"]
)
INFER_SECONDS = Histogram(
    "pantau_inference_seconds", "Model time per frame, averaged over its batch"
)

# Frames above this size are refused rather than decoded.
MAX_FRAME_BYTES = 8 * 1024 * 1024
_DELIVERY_TIMEOUT_S = 60.0
# A frame from an unknown camera makes the worker read its configuration file
# again, at most this often.
_FORCED_REFRESH_EVERY_S = 5.0


@dataclass(frozen=True)
class _DecodedFrame:
    frame: Frame
    camera: CameraConfig
    image: npt.NDArray[np.uint8]


class InferenceWorker:
    """One consumer-group member: decode, detect, publish, then commit."""

    def __init__(
        self,
        *,
        consumer: Consumer,
        tracker: DeliveryTracker,
        dead_letters: DeadLetterPublisher,
        frames_codec: AvroCodec,
        events_codec: AvroCodec,
        analyzer: Analyzer,
        cameras: Mapping[str, CameraConfig],
        batch_max: int,
        stop: threading.Event,
        annotated_codec: AvroCodec | None = None,
        batch_wait_s: float = 0.1,
        refresh_cameras: Callable[[bool], Mapping[str, CameraConfig] | None]
        | None = None,
    ) -> None:
        self._consumer = consumer
        self._tracker = tracker
        self._dead_letters = dead_letters
        self._frames_codec = frames_codec
        self._events_codec = events_codec
        self._analyzer = analyzer
        self._cameras = cameras
        # Gives the cameras again when the configuration changed (forced: look
        # now, for a frame from a camera not known yet); None when unchanged.
        self._refresh_cameras = refresh_cameras
        self._last_forced_refresh = 0.0
        self._batch_max = batch_max
        self._batch_wait_s = batch_wait_s
        self._annotated_codec = annotated_codec
        self._stop = stop
        self.events_published = 0

    def run(self) -> None:
        """Consume until the stop event is set, then commit and close."""
        self._consumer.subscribe([self._frames_codec.topic])
        log.info(
            "inference worker started topic=%s models=%s batch_max=%s",
            self._frames_codec.topic,
            self._analyzer.model_versions,
            self._batch_max,
        )
        try:
            while not self._stop.is_set():
                # Dynamic batching: up to batch_max frames, or what arrived
                # within the time budget.
                batch = self._consumer.consume(
                    self._batch_max, timeout=self._batch_wait_s
                )
                if batch:
                    self._process_batch(batch)
        finally:
            self._consumer.close()
            log.info("inference worker stopped events=%s", self.events_published)

    def _process_batch(self, batch: list[Message]) -> None:
        first_offsets: dict[tuple[str, int], int] = {}
        ready: list[_DecodedFrame] = []
        for message in batch:
            if message_error(message) is not None:
                continue
            key = (message.topic() or "", message.partition() or 0)
            first_offsets.setdefault(key, message.offset() or 0)
            decoded = self._decode(message)
            if decoded is not None:
                ready.append(decoded)
        if ready:
            started = time.perf_counter()
            analyses = self._analyzer.analyze_batch(
                [item.image for item in ready], [item.camera for item in ready]
            )
            INFER_SECONDS.observe((time.perf_counter() - started) / len(ready))
            for item, analysis in zip(ready, analyses, strict=True):
                self._publish(item, analysis)
        try:
            self._tracker.flush(_DELIVERY_TIMEOUT_S)
        except DeliveryFailedError as error:
            log.error("rewinding batch, events not acknowledged: %s", error)
            for (topic, partition), offset in first_offsets.items():
                self._consumer.seek(TopicPartition(topic, partition, offset))
            time.sleep(1.0)
            return
        if first_offsets:
            commit_done(self._consumer, "the batch's frames")

    def _decode(self, message: Message) -> _DecodedFrame | None:
        """The frame, its camera and its image; None (and a dead letter) when the
        message cannot be analysed."""
        try:
            frame = cast(Frame, self._frames_codec.decode(message.value()))
        except MessageDecodeError as error:
            FRAMES.labels("bad-schema").inc()
            self._dead_letters.publish(message, "bad-schema", str(error))
            return None
        camera = self._camera(frame["camera_id"])
        if camera is None:
            FRAMES.labels("unknown-camera").inc()
            self._dead_letters.publish(
                message,
                "unknown-camera",
                f"camera {frame['camera_id']!r} is not in the configuration; add it "
                "to cameras so its region is known",
            )
            return None
        try:
            image = decode_jpeg(frame["image"], MAX_FRAME_BYTES)
        except FrameDecodeError as error:
            FRAMES.labels("undecodable-image").inc()
            self._dead_letters.publish(message, "undecodable-image", str(error))
            return None
        return _DecodedFrame(frame, camera, image)

    def _camera(self, camera_id: str) -> CameraConfig | None:
        """The camera's configuration; for an unknown camera the configuration
        file is read again (at most every few seconds) before giving up."""
        if self._refresh_cameras is not None:
            cameras = self._refresh_cameras(False)
            if cameras is None and camera_id not in self._cameras:
                now = time.monotonic()
                if now - self._last_forced_refresh >= _FORCED_REFRESH_EVERY_S:
                    self._last_forced_refresh = now
                    cameras = self._refresh_cameras(True)
            if cameras is not None:
                self._cameras = cameras
                log.info("cameras reloaded count=%s", len(cameras))
        return self._cameras.get(camera_id)

    def _publish(self, item: _DecodedFrame, analysis: FrameAnalysis) -> None:
        frame, camera = item.frame, item.camera
        region: Region = {
            "city": camera.region.city,
            "kecamatan": camera.region.kecamatan,
            "kelurahan": camera.region.kelurahan,
        }
        event = build_detection_event(frame, region, analysis, int(time.time() * 1000))
        self._tracker.producer.produce(
            self._events_codec.topic,
            key=frame["camera_id"].encode(),
            value=self._events_codec.encode(event),
            on_delivery=self._tracker.on_delivery,
        )
        if self._annotated_codec is not None:
            self._publish_annotated(frame, item.image, analysis)
        self._tracker.producer.poll(0)
        self.events_published += 1
        FRAMES.labels("published").inc()
        log.debug(
            "frame analysed camera=%s seq=%s people=%s",
            frame["camera_id"],
            frame["frame_seq"],
            event["counts"]["people"],
        )

    def _publish_annotated(
        self, frame: Frame, image: npt.NDArray[np.uint8], analysis: FrameAnalysis
    ) -> None:
        assert self._annotated_codec is not None
        ok, jpeg = cv2.imencode(
            ".jpg", annotate(image, analysis), [cv2.IMWRITE_JPEG_QUALITY, 80]
        )
        if not ok:
            log.warning("annotated frame not encoded camera=%s", frame["camera_id"])
            return
        annotated: Frame = {**frame, "image": jpeg.tobytes()}
        self._tracker.producer.produce(
            self._annotated_codec.topic,
            key=frame["camera_id"].encode(),
            value=self._annotated_codec.encode(annotated),
            on_delivery=self._tracker.on_delivery,
        )
