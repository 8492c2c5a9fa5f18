"""The latest annotated frame of every camera, kept from the annotated-frames
topic by a background consumer (assigned, never committing)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import cast

from confluent_kafka import Consumer, TopicPartition

from pantau.kafka import message_error
from schemas.codec import AvroCodec, MessageDecodeError
from schemas.records import Frame

log = logging.getLogger("pantau.web.frames")

# On start, each partition is read from this many messages before its end, so
# the wall shows pictures at once.
_BACKLOG_MESSAGES = 200


@dataclass(frozen=True)
class LatestFrame:
    """One camera's newest annotated picture."""

    camera_id: str
    captured_at_ms: int
    content_type: str
    image: bytes


class LatestFrames:
    """Keeps the newest frame per camera until ``stop`` is set."""

    def __init__(
        self, consumer: Consumer, codec: AvroCodec, stop: threading.Event
    ) -> None:
        self._consumer = consumer
        self._codec = codec
        self._stop = stop
        self._lock = threading.Lock()
        self._frames: dict[str, LatestFrame] = {}
        self._thread = threading.Thread(
            target=self._run, name="web-frames", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    def get(self, camera_id: str) -> LatestFrame | None:
        with self._lock:
            return self._frames.get(camera_id)

    def cameras(self) -> list[str]:
        with self._lock:
            return sorted(self._frames)

    def _assign(self) -> None:
        topic = self._codec.topic
        metadata = self._consumer.list_topics(topic, timeout=30)
        assigned = []
        for partition in sorted(metadata.topics[topic].partitions):
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=30
            )
            start = max(low, high - _BACKLOG_MESSAGES)
            assigned.append(TopicPartition(topic, partition, start))
        self._consumer.assign(assigned)

    def _run(self) -> None:
        try:
            self._assign()
            while not self._stop.is_set():
                for message in self._consumer.consume(100, timeout=0.5):
                    if message_error(message) is None:
                        self._take(message.value())
        except Exception:
            log.exception("annotated-frames reader stopped on an error")
        finally:
            self._consumer.close()

    def _take(self, value: bytes | None) -> None:
        try:
            frame = cast(Frame, self._codec.decode(value))
        except MessageDecodeError as error:
            log.warning("skipping an unreadable annotated frame: %s", error)
            return
        latest = LatestFrame(
            frame["camera_id"],
            frame["captured_at_ms"],
            frame["content_type"],
            frame["image"],
        )
        with self._lock:
            current = self._frames.get(latest.camera_id)
            if current is None or current.captured_at_ms <= latest.captured_at_ms:
                self._frames[latest.camera_id] = latest
