"""The faust-streaming app that keeps event-time windows per camera and region.

Two agents, each with a changelog-backed table:

- ``count_windows`` reads the detections topic (keyed by camera) and runs
  ``camera_windows`` on each partition: camera windows go straight to the result
  topics, region partials and watermarks to the repartition topic;
- ``sum_regions`` reads the repartition topic (keyed by region window) and runs
  ``region_windows``: region windows go to the result topics.

Every window change is published three ways: the full aggregate on the windows
topic (landed in ClickHouse by the sink), and its mobility and compliance views
on their topics for downstream systems.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, cast

import faust
from faust.types import Message as FaustMessage
from prometheus_client import Counter

from pantau.config import PantauConfig
from pantau.dead_letter import dead_letter_record
from pantau.kafka import consumer_config, topic_name
from schemas.codec import AvroCodec, MessageDecodeError
from schemas.records import DetectionEvent, WindowAggregate
from schemas.registry import SchemaResolver
from schemas.topics import (
    COMPLIANCE,
    DEAD_LETTER,
    DETECTIONS,
    LATE_EVENTS,
    MOBILITY,
    WINDOWS,
    WINDOWS_REPARTITION,
)
from stream_apps.camera_windows import CameraWindows, PartialMessage, WatermarkMessage
from stream_apps.offset_guard import OffsetGuard, RawMessage
from stream_apps.region_windows import RegionWindows
from stream_apps.results import compliance_of, mobility_of
from stream_apps.tally import aggregate_key
from stream_apps.window_settings import WindowSettings

log = logging.getLogger("pantau.stream_apps.windows")

EVENTS = Counter(
    "pantau_windows_events_total",
    "Detection events read by the windows app, by outcome",
    ["outcome"],
)
LATE_PARTIALS = Counter(
    "pantau_windows_late_partials_total",
    "Region partials that arrived after their region window closed",
)

APP_ID = "pantau-windows"
WATERMARK_KEY = b"__watermark__"


async def await_all(futures: list[Any]) -> None:
    """Wait until Kafka has acknowledged every send."""
    if futures:
        await asyncio.gather(*futures)


def create_app(
    config: PantauConfig,
    bootstrap: str,
    resolver: SchemaResolver,
    partitions: int,
    *,
    session_timeout_s: float = 10.0,
) -> faust.App:
    """The windows app, wired to the configured topics; ``partitions`` must equal
    the detections topic's partition count (the repartition topic has as many)."""
    kafka = config.kafka
    settings = WindowSettings.from_pipeline(config.pipeline, partitions)
    datadir = config.state_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"{kafka.topic_prefix}{APP_ID}",
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        broker_credentials=None,
        store="memory://",
        # faust keeps a small data folder even for in-memory tables.
        datadir=str(datadir),
        web_enabled=False,
        topic_partitions=partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_allow_declare=True,
        topic_disable_leader=True,
        processing_guarantee="at_least_once",
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        producer_acks=-1,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        # The tables' changelogs are JSON; the pipeline topics say "raw".
        key_serializer="json",
        value_serializer="json",
    )
    codecs = {
        spec.name: AvroCodec(topic_name(kafka, spec), spec.record_type, resolver)
        for spec in (DETECTIONS, WINDOWS, MOBILITY, COMPLIANCE, DEAD_LETTER)
    }

    def raw_topic(name: str) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
        )

    detections_topic = raw_topic(topic_name(kafka, DETECTIONS))
    repartition_topic = raw_topic(topic_name(kafka, WINDOWS_REPARTITION))
    late_topic = raw_topic(topic_name(kafka, LATE_EVENTS))
    dead_letter_topic = raw_topic(topic_name(kafka, DEAD_LETTER))
    results = [
        (raw_topic(topic_name(kafka, spec)), codecs[spec.name], view)
        for spec, view in (
            (WINDOWS, None),
            (MOBILITY, mobility_of),
            (COMPLIANCE, compliance_of),
        )
    ]
    camera_table = app.Table("camera-windows", default=None, partitions=partitions)
    region_table = app.Table("region-windows", default=None, partitions=partitions)
    cameras = CameraWindows(settings, camera_table)
    regions = RegionWindows(settings, region_table)

    async def publish(aggregate: WindowAggregate) -> list[Any]:
        """Send one window to the three result topics; returns the delivery
        futures."""
        key = aggregate_key(aggregate).encode()
        futures = []
        for topic, codec, view in results:
            record: Any = aggregate if view is None else view(aggregate)
            futures.append(await topic.send(key=key, value=codec.encode(record)))
        return futures

    async def dead_letter(message: RawMessage, error_type: str, reason: str) -> Any:
        """Send the message to the dead-letter topic; returns the delivery
        future."""
        log.warning(
            "dead-lettering message topic=%s partition=%s offset=%s reason=%s",
            message.topic,
            message.partition,
            message.offset,
            reason,
        )
        record = dead_letter_record(
            "windows",
            source_topic=message.topic,
            source_partition=message.partition,
            source_offset=message.offset,
            key=message.key,
            value=message.value,
            error_type=error_type,
            reason=reason,
        )
        return await dead_letter_topic.send(
            key=message.key, value=codecs[DEAD_LETTER.name].encode(record)
        )

    guard = OffsetGuard(
        consumer_config(
            kafka, bootstrap, f"{kafka.topic_prefix}{APP_ID}-gaps", "pantau-windows"
        )
    )

    async def in_order(
        event_msg: faust.EventT[Any], expected: int | None
    ) -> list[RawMessage]:
        """The messages to apply, in order: any the consumer skipped, read
        back, then this one."""
        message = event_msg.message
        current = RawMessage(
            message.topic,
            message.partition,
            message.offset,
            cast(bytes | None, event_msg.key),
            cast(bytes | None, event_msg.value),
        )
        skipped = await guard.missing(
            message.topic, message.partition, message.offset, expected
        )
        return [*skipped, current]

    async def count_event(message: RawMessage) -> None:
        partition, offset, raw = message.partition, message.offset, message.value
        try:
            event = cast(DetectionEvent, codecs[DETECTIONS.name].decode(raw))
        except MessageDecodeError as error:
            EVENTS.labels("bad-schema").inc()
            await await_all([await dead_letter(message, "bad-schema", str(error))])
            cameras.acknowledge(partition, offset)
            return
        now_ms = int(time.time() * 1000)
        out = cameras.on_event(partition, offset, event, now_ms)
        EVENTS.labels(out.outcome).inc()
        log.debug(
            "event partition=%s offset=%s outcome=%s captured_at_ms=%s windows=%s "
            "partials=%s watermark=%s",
            partition,
            offset,
            out.outcome,
            event["captured_at_ms"],
            len(out.windows),
            len(out.partials),
            None if out.watermark is None else out.watermark["watermark_ms"],
        )
        futures = []
        if out.outcome == "late":
            log.info(
                "late event routed camera=%s captured_at_ms=%s",
                event["camera_id"],
                event["captured_at_ms"],
            )
            futures.append(await late_topic.send(key=message.key, value=raw))
        elif out.outcome == "future":
            futures.append(
                await dead_letter(
                    message,
                    "future-capture-time",
                    "capture time too far in the future: expected at most "
                    f"{settings.future_tolerance_ms} ms after now_ms={now_ms}, "
                    f"got captured_at_ms={event['captured_at_ms']}; check the "
                    "camera's or sampler's clock",
                )
            )
        for aggregate in out.windows:
            futures += await publish(aggregate)
        for key, partial in out.partials:
            futures.append(
                await repartition_topic.send(
                    key=key.encode(), value=json.dumps(partial).encode()
                )
            )
        if out.outcome in ("late", "future", "duplicate"):
            # Routed and acknowledged before the stage forgets the message.
            await await_all(futures)
            cameras.acknowledge(partition, offset)
        if out.outbox:
            # Final windows and partials are acknowledged before the
            # watermark goes out and before the outbox forgets them.
            await await_all(futures)
            cameras.delivered(partition, out.outbox)
        if out.watermark is not None:
            value = json.dumps(out.watermark).encode()
            for target in range(partitions):
                await repartition_topic.send(
                    key=WATERMARK_KEY, value=value, partition=target
                )

    async def sum_message(message: RawMessage) -> None:
        partition, offset = message.partition, message.offset
        now_ms = int(time.time() * 1000)
        try:
            body = json.loads(cast(bytes, message.value))
            if body["type"] == "watermark":
                out = regions.on_watermark(
                    partition, offset, cast(WatermarkMessage, body), now_ms
                )
            else:
                key = cast(bytes, message.key).decode()
                out = regions.on_partial(
                    partition, offset, key, cast(PartialMessage, body), now_ms
                )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            future = await dead_letter(
                message,
                "bad-repartition-message",
                f"expected a partial or watermark message, got {error!r}",
            )
            await await_all([future])
            regions.acknowledge(partition, offset, now_ms)
            return
        futures = []
        for key, partial, reason in out.late:
            LATE_PARTIALS.inc()
            futures.append(await dead_letter(message, "late-region-partial", reason))
            log.debug("late partial key=%s source=%s", key, partial["source"])
        for aggregate in out.windows:
            futures += await publish(aggregate)
        if out.late:
            await await_all(futures)
            regions.acknowledge(partition, offset, now_ms)
        if out.outbox:
            await await_all(futures)
            regions.delivered(partition, out.outbox)

    def read_back(message: RawMessage) -> None:
        """Tell faust a message the guard read back has been dealt with.

        faust commits a partition only up to its first offset never
        acknowledged; a message it dropped (an agent restarted mid-message, a
        rebalance) would otherwise hold the group's committed offset there for
        good: the lag never reaches zero and every restart replays from it.
        """
        app.consumer.ack(
            FaustMessage(
                message.topic,
                message.partition,
                message.offset,
                timestamp=0.0,
                timestamp_type=0,
                headers=None,
                key=message.key,
                value=message.value,
                checksum=None,
            )
        )

    @app.agent(detections_topic)
    async def count_windows(stream: faust.StreamT[bytes]) -> None:
        async for event_msg in stream.events():
            expected = cameras.next_offset(event_msg.message.partition)
            *skipped, current = await in_order(event_msg, expected)
            for message in skipped:
                await count_event(message)
                read_back(message)
            await count_event(current)

    @app.agent(repartition_topic)
    async def sum_regions(stream: faust.StreamT[bytes]) -> None:
        async for event_msg in stream.events():
            expected = regions.next_offset(event_msg.message.partition)
            *skipped, current = await in_order(event_msg, expected)
            for message in skipped:
                await sum_message(message)
                read_back(message)
            await sum_message(current)

    detections_name = topic_name(kafka, DETECTIONS)

    async def forward_idle_shares() -> None:
        """Region shares of quiet partitions, so that region windows do not
        wait for the next event to catch up."""
        now_ms = int(time.time() * 1000)
        owned = sorted(
            tp.partition
            for tp in app.consumer.assignment()
            if tp.topic == detections_name
        )
        for partition in owned:
            for key, partial in cameras.idle_partials(partition, now_ms):
                await repartition_topic.send(
                    key=key.encode(), value=json.dumps(partial).encode()
                )

    app.timer(interval=max(1.0, settings.heartbeat_ms / 1000))(forward_idle_shares)
    log.debug(
        "windows agents registered agents=%s,%s timer=%s",
        count_windows.name,
        sum_regions.name,
        forward_idle_shares.__name__,
    )
    return app
