"""``pantau bench windows``: detection events through one windows worker, against
a bare aiokafka consumer reading the same topic in the same run.

Three figures, each over the same events on fresh topics:

- bare: an aiokafka consumer that only reads the messages (the ceiling);
- logic: the window logic alone (decode, both stages) over in-memory dicts, no
  Kafka, no faust: what the Python code itself costs;
- worker: a real `pantau windows run` process, timed by its committed offsets
  from its first commit until every event and every region message is committed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka import TopicPartition as ConfluentPartition

from infra.topics_admin import ensure_topics
from pantau.config import PantauConfig
from pantau.kafka import make_resolver, topic_name
from schemas.codec import AvroCodec
from schemas.records import DetectionEvent
from schemas.topics import DETECTIONS, WINDOWS_REPARTITION
from stream_apps.camera_windows import CameraWindows
from stream_apps.region_windows import RegionWindows
from stream_apps.window_settings import WindowSettings
from stream_apps.windows import APP_ID

log = logging.getLogger("pantau.bench")

START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC


@dataclass(frozen=True)
class Rate:
    """Events handled over a time."""

    events: int
    seconds: float

    @property
    def per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def synthetic_events(count: int, cameras: int) -> list[DetectionEvent]:
    """``count`` events from ``cameras`` cameras in 10 kecamatan and 60
    kelurahan, one frame per camera per second of capture time."""
    events: list[DetectionEvent] = []
    for index in range(count):
        camera = index % cameras
        second = index // cameras
        kelurahan = camera % 60
        events.append(
            {
                "event_id": f"bench-{index}",
                "camera_id": f"cam-{camera:04d}",
                "region": {
                    "city": "Jakarta",
                    "kecamatan": f"kec-{kelurahan % 10:02d}",
                    "kelurahan": f"kel-{kelurahan:02d}",
                },
                "frame_seq": second,
                "captured_at_ms": START_MS + second * 1000 + camera,
                "processed_at_ms": START_MS + second * 1000 + camera + 200,
                "width_px": 1280,
                "height_px": 720,
                "model_versions": {"people": "bench"},
                "calibrated": camera % 3 == 0,
                "counts": {
                    "people": index % 7,
                    "vehicles": {"car": index % 5, "motorcycle": index % 9},
                    "faces": index % 4,
                    "masked": min(index % 3, index % 4),
                    "unmasked": index % 4 - min(index % 3, index % 4),
                    "distancing_violators": index % 2,
                },
                "detections": [],
            }
        )
    return events


def publish(bootstrap: str, topic: str, codec: AvroCodec, events: list[Any]) -> None:
    """Publish the events keyed by camera and wait for every acknowledgement."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for event in events:
        while True:
            try:
                producer.produce(
                    topic, key=event["camera_id"].encode(), value=codec.encode(event)
                )
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        raise RuntimeError(f"benchmark events not delivered: {remaining} left")


def bare_consumer(bootstrap: str, topic: str, partitions: int, count: int) -> Rate:
    """Read ``count`` messages from the start with a bare aiokafka consumer."""

    async def read() -> Rate:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False
        )
        await consumer.start()
        try:
            assigned = [TopicPartition(topic, p) for p in range(partitions)]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            seen = 0
            started = time.perf_counter()
            while seen < count:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
                seen += sum(len(messages) for messages in batches.values())
            return Rate(seen, time.perf_counter() - started)
        finally:
            await consumer.stop()

    return asyncio.run(read())


def window_logic(
    events: list[DetectionEvent], codec: AvroCodec, partitions: int
) -> Rate:
    """Decode and run both stages over dicts: the Python cost alone."""
    settings = WindowSettings(
        size_ms=900_000,
        hop_ms=60_000,
        grace_ms=300_000,
        rolling=True,
        heartbeat_ms=10_000,
        idle_ms=3_600_000,
        future_tolerance_ms=600_000,
        source_partitions=partitions,
    )
    cameras = CameraWindows(settings, {})
    regions = RegionWindows(settings, {})
    encoded = [(event["camera_id"], codec.encode(event)) for event in events]
    now_ms = int(time.time() * 1000)
    event_offsets = [0] * partitions
    region_offsets = [0] * partitions

    def next_offset(offsets: list[int], partition: int) -> int:
        offsets[partition] += 1
        return offsets[partition] - 1

    started = time.perf_counter()
    for camera_id, value in encoded:
        event: Any = codec.decode(value)
        partition = zlib.crc32(camera_id.encode()) % partitions
        out = cameras.on_event(
            partition, next_offset(event_offsets, partition), event, now_ms
        )
        cameras.delivered(partition, out.outbox)
        for key, partial in out.partials:
            # The repartition topic carries JSON; pay for it here too.
            message = json.loads(json.dumps(partial))
            target = zlib.crc32(key.encode()) % partitions
            region_out = regions.on_partial(
                target, next_offset(region_offsets, target), key, message, now_ms
            )
            regions.delivered(target, region_out.outbox)
        if out.watermark is not None:
            for target in range(partitions):
                region_out = regions.on_watermark(
                    target, next_offset(region_offsets, target), out.watermark, now_ms
                )
                regions.delivered(target, region_out.outbox)
    return Rate(len(events), time.perf_counter() - started)


def committed_total(consumer: Consumer, topic: str, partitions: int) -> int:
    """Offsets the windows app's group has committed on ``topic``, summed."""
    tps = [ConfluentPartition(topic, p) for p in range(partitions)]
    deadline = time.monotonic() + 30
    while True:
        try:
            committed = consumer.committed(tps, timeout=10)
        except KafkaException as error:
            # The group's coordinator is elected when the worker first joins.
            if time.monotonic() > deadline:
                raise
            log.debug("committed offsets not readable yet error=%s", error)
            time.sleep(0.5)
            continue
        return sum(max(tp.offset, 0) for tp in committed)


def end_total(consumer: Consumer, topic: str, partitions: int) -> int:
    """The end offsets of ``topic``, summed."""
    return sum(
        consumer.get_watermark_offsets(ConfluentPartition(topic, p), timeout=10)[1]
        for p in range(partitions)
    )


def windows_worker(
    config: PantauConfig,
    config_args: Sequence[str],
    bootstrap: str,
    count: int,
) -> tuple[Rate, Rate]:
    """Run one `pantau windows run` over the published events; returns the
    detections rate and the rate until the region stage has caught up too."""
    kafka = config.kafka
    detections = topic_name(kafka, DETECTIONS)
    repartition = topic_name(kafka, WINDOWS_REPARTITION)
    partitions = kafka.default_partitions
    env = {
        **os.environ,
        "PANTAU__KAFKA__TOPIC_PREFIX": kafka.topic_prefix,
        "PANTAU__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "PANTAU__PIPELINE__WINDOW_IDLE_S": "3600",
    }
    # The worker's log goes to a file: a pipe nobody reads while the worker
    # runs fills up and blocks it.
    with tempfile.TemporaryFile() as log_file:
        return _watch_worker(
            subprocess.Popen(
                [sys.executable, "-m", "pantau.cli", *config_args, "windows", "run"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            ),
            log_file,
            bootstrap=bootstrap,
            group=f"{kafka.topic_prefix}{APP_ID}",
            topics=(detections, repartition),
            partitions=partitions,
            count=count,
        )


def _watch_worker(
    process: subprocess.Popen[bytes],
    log_file: Any,
    *,
    bootstrap: str,
    group: str,
    topics: tuple[str, str],
    partitions: int,
    count: int,
) -> tuple[Rate, Rate]:
    """Follow the worker's committed offsets until every event is done."""
    detections, repartition = topics
    watcher = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        first: tuple[float, int] | None = None
        deadline = time.monotonic() + 600
        done = 0
        reported = time.monotonic()
        while done < count:
            if process.poll() is not None:
                log_file.seek(0)
                stderr = log_file.read()
                raise RuntimeError(
                    f"windows worker exited with {process.returncode}: "
                    f"{stderr.decode(errors='replace')[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"windows worker took over 600 s for {count} events")
            done = committed_total(watcher, detections, partitions)
            if first is None and done > 0:
                first = (time.perf_counter(), done)
            if time.monotonic() - reported >= 2:
                reported = time.monotonic()
                log.info("windows worker progress committed=%s of=%s", done, count)
            time.sleep(0.2)
        assert first is not None
        if first[1] >= count:
            raise RuntimeError(
                f"the worker committed all {count} events before its first commit "
                "was seen, so its rate cannot be timed; run with more --events"
            )
        detections_rate = Rate(count - first[1], time.perf_counter() - first[0])
        region_end = end_total(watcher, repartition, partitions)
        while committed_total(watcher, repartition, partitions) < region_end:
            time.sleep(0.2)
        overall = Rate(count - first[1], time.perf_counter() - first[0])
        return detections_rate, overall
    finally:
        watcher.close()
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def bench_windows(
    config: PantauConfig,
    config_args: Sequence[str],
    bootstrap: str,
    *,
    events: int,
    cameras: int,
) -> str:
    """Run the three measurements and return the report."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    kafka = config.kafka.model_copy(update={"topic_prefix": prefix})
    config = config.model_copy(update={"kafka": kafka})
    partitions = ensure_topics(kafka, bootstrap)
    topic = topic_name(kafka, DETECTIONS)
    codec = AvroCodec(topic, DETECTIONS.record_type, make_resolver(kafka))
    stream = synthetic_events(events, cameras)
    log.info("publishing benchmark events events=%s topic=%s", events, topic)
    publish(bootstrap, topic, codec, stream)
    bare = bare_consumer(bootstrap, topic, partitions[topic], events)
    logic = window_logic(stream, codec, partitions[topic])
    log.info("starting a windows worker events=%s", events)
    worker, overall = windows_worker(config, config_args, bootstrap, events)
    lines = [
        f"windows benchmark: {events} detection events from {cameras} cameras, "
        f"{partitions[topic]} partitions, topics {prefix}*",
        f"  bare aiokafka consumer (read only)   {bare.per_s:10.0f} events/s",
        f"  window logic alone (decode + stages) {logic.per_s:10.0f} events/s",
        f"  windows worker, detections committed {worker.per_s:10.0f} events/s",
        f"  windows worker, regions caught up    {overall.per_s:10.0f} events/s",
        f"  ratio worker / bare consumer          {worker.per_s / bare.per_s:10.3f}",
    ]
    return "\n".join(lines)
