"""``pantau bench producers``: simulated cameras through the real samplers and
the real broker, against a bare confluent-kafka producer sending the same bytes
in the same run."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from confluent_kafka import Producer

from infra.topics_admin import ensure_topics
from pantau.config import CameraConfig, PantauConfig
from pantau.kafka import make_resolver, producer_config, topic_name
from producers.publisher import FramePublisher
from producers.sampler import CameraSampler, SamplerSettings
from schemas.codec import AvroCodec
from schemas.registry import SchemaResolver
from schemas.topics import CAMERA_STATUS, FRAMES

log = logging.getLogger("pantau.bench")


class MemorySource:
    """A simulated camera: cycles through decoded frames held in memory, each
    camera starting at its own offset."""

    def __init__(self, frames: list[npt.NDArray[np.uint8]], offset: int) -> None:
        self._frames = itertools.cycle(frames[offset:] + frames[:offset])

    def open(self) -> None:
        """Nothing to connect."""

    def read(self, interval_s: float) -> npt.NDArray[np.uint8] | None:
        return next(self._frames)

    def close(self) -> None:
        """Nothing to release."""


def load_frames(video: Path, count: int) -> list[npt.NDArray[np.uint8]]:
    """The first ``count`` frames of a video, decoded."""
    capture = cv2.VideoCapture(str(video))
    frames: list[npt.NDArray[np.uint8]] = []
    while len(frames) < count:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(np.asarray(image, np.uint8))
    capture.release()
    if not frames:
        raise ValueError(f"no frame could be read from {video}")
    return frames


class RecordingCodec(AvroCodec):
    """The frame codec, keeping every message it encodes for the baseline."""

    def __init__(self, topic: str, record_type: str, resolver: SchemaResolver) -> None:
        super().__init__(topic, record_type, resolver)
        self.sent: list[bytes] = []

    def encode(self, record: Mapping[str, Any]) -> bytes:
        value = super().encode(record)
        self.sent.append(value)
        return value


@dataclass(frozen=True)
class Throughput:
    """Messages and bytes acknowledged over a measured time."""

    messages: int
    bytes: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0


def run_samplers_for(
    config: PantauConfig,
    bootstrap: str,
    *,
    frames: list[npt.NDArray[np.uint8]],
    cameras: int,
    interval_s: float,
    duration_s: float,
) -> tuple[Throughput, list[bytes]]:
    """Run ``cameras`` simulated cameras for ``duration_s``; returns what was
    acknowledged and every frame message produced (for the baseline)."""
    kafka = config.kafka
    resolver = make_resolver(kafka)
    frames_codec = RecordingCodec(topic_name(kafka, FRAMES), "frame", resolver)
    stop = threading.Event()
    producer = Producer(producer_config(kafka, bootstrap, "pantau-bench-samplers"))
    publisher = FramePublisher(
        producer,
        frames_codec,
        AvroCodec(topic_name(kafka, CAMERA_STATUS), "camera_status", resolver),
        config.producers.max_frame_bytes,
        stop,
    )
    samplers = []
    for index in range(cameras):
        camera = CameraConfig.model_validate(
            {
                "id": f"sim-{index:04d}",
                "source_url": "http://simulated.invalid/snap.jpg",
                "region": {"city": "Sim", "kecamatan": "Sim", "kelurahan": "Sim"},
                "sample_interval_s": interval_s,
            }
        )
        samplers.append(
            CameraSampler(
                camera=camera,
                publisher=publisher,
                settings=SamplerSettings.for_camera(config, camera),
                stop=stop,
                source=MemorySource(frames, index % len(frames)),
            )
        )
    threads = [threading.Thread(target=s.run, daemon=True) for s in samplers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    while time.perf_counter() - started < duration_s:
        producer.poll(0.1)
    stop.set()
    for thread in threads:
        thread.join()
    producer.flush(60)
    elapsed_s = time.perf_counter() - started
    frame_bytes = sum(len(value) for value in frames_codec.sent)
    delivered_frames = sum(s.published for s in samplers)
    return Throughput(delivered_frames, frame_bytes, elapsed_s), frames_codec.sent


def run_bare_producer(
    config: PantauConfig, bootstrap: str, topic: str, values: list[bytes]
) -> Throughput:
    """Send the same messages with a bare producer as fast as it goes."""
    producer = Producer(producer_config(config.kafka, bootstrap, "pantau-bench-bare"))
    delivered = 0

    def on_delivery(error: object, _message: object) -> None:
        nonlocal delivered
        delivered += error is None

    started = time.perf_counter()
    for index, value in enumerate(values):
        while True:
            try:
                producer.produce(
                    topic,
                    key=f"sim-{index % 1000:04d}".encode(),
                    value=value,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    return Throughput(
        delivered, sum(len(v) for v in values), time.perf_counter() - started
    )


def bench_producers(
    config: PantauConfig,
    bootstrap: str,
    *,
    video: Path,
    cameras: int,
    interval_s: float,
    duration_s: float,
) -> str:
    """Run both measurements and return the report."""
    bench_config = config.model_copy(
        update={
            "kafka": config.kafka.model_copy(
                update={"topic_prefix": f"bench-{int(time.time())}."}
            )
        }
    )
    ensure_topics(bench_config.kafka, bootstrap)
    frames = load_frames(video, 60)
    log.info(
        "benchmark starting cameras=%s interval_s=%s duration_s=%s",
        cameras,
        interval_s,
        duration_s,
    )
    pipeline, values = run_samplers_for(
        bench_config,
        bootstrap,
        frames=frames,
        cameras=cameras,
        interval_s=interval_s,
        duration_s=duration_s,
    )
    bare = run_bare_producer(
        bench_config,
        bootstrap,
        topic_name(bench_config.kafka, FRAMES),
        values,
    )
    offered = cameras / interval_s
    return "\n".join(
        [
            f"simulated cameras: {cameras} at one frame every {interval_s} s "
            f"(offered {offered:.1f} frames/s) for {duration_s} s",
            f"samplers (read, resize, JPEG, Avro, publish): "
            f"{pipeline.per_s:.1f} frames/s, {pipeline.mb_per_s:.2f} MB/s "
            f"({pipeline.messages} frames, "
            f"{pipeline.bytes / max(1, pipeline.messages) / 1000:.1f} kB each)",
            f"bare confluent-kafka producer, same {bare.messages} messages: "
            f"{bare.per_s:.1f} msg/s, {bare.mb_per_s:.2f} MB/s",
            f"samplers / offered load: {pipeline.per_s / offered:.3f}",
            f"samplers / bare producer (msg/s): {pipeline.per_s / bare.per_s:.3f}",
        ]
    )
