"""The faust-streaming app that keeps event-time windows per camera.

Detection events arrive keyed by camera id. Each event is counted into its
15-minute tumbling window (by capture time) in a changelog-backed table; every
change is published to the windows topic with a higher revision, from where the
sink lands it in ClickHouse. Each input partition keeps an event-time clock: once
its latest capture time is ``window_grace_s`` past a window's end, the window is
published a last time with ``is_final`` and dropped from the table, and events
that still arrive for it go to the late-events topic.
"""

from __future__ import annotations

import logging
import time
from typing import cast

import faust
from prometheus_client import Counter

from pantau.config import PantauConfig
from pantau.dead_letter import dead_letter_record
from pantau.kafka import topic_name
from schemas.codec import AvroCodec, MessageDecodeError
from schemas.records import DetectionEvent
from schemas.registry import SchemaResolver
from schemas.topics import DEAD_LETTER, DETECTIONS, LATE_EVENTS, WINDOWS
from stream_apps.window_state import (
    PartitionClock,
    WindowState,
    apply_event,
    camera_window_key,
    clock_key,
    finalize,
    is_closed,
    new_camera_window,
    new_clock,
    window_start_ms,
)

log = logging.getLogger("pantau.stream_apps.windows")

LATE_COUNT = Counter(
    "pantau_windows_late_events_total",
    "Detection events for windows already closed, routed to the late-events topic",
)

APP_ID = "pantau-windows"


def create_app(
    config: PantauConfig,
    bootstrap: str,
    resolver: SchemaResolver,
    partitions: int,
    *,
    session_timeout_s: float = 10.0,
) -> faust.App:
    """The windows app, wired to the configured topics; ``partitions`` must equal
    the detections topic's partition count."""
    kafka = config.kafka
    size_ms = config.pipeline.window_size_s * 1000
    grace_ms = config.pipeline.window_grace_s * 1000
    app = faust.App(
        f"{kafka.topic_prefix}{APP_ID}",
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        broker_credentials=None,
        store="memory://",
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
        # The window table's changelog is JSON; the pipeline topics say "raw".
        key_serializer="json",
        value_serializer="json",
    )
    detections_codec = AvroCodec(
        topic_name(kafka, DETECTIONS), "detection_event", resolver
    )
    windows_codec = AvroCodec(topic_name(kafka, WINDOWS), "window_aggregate", resolver)
    dead_letter_codec = AvroCodec(
        topic_name(kafka, DEAD_LETTER), "dead_letter", resolver
    )
    detections_topic = app.topic(
        detections_codec.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
    windows_topic = app.topic(
        windows_codec.topic, key_serializer="raw", value_serializer="raw"
    )
    late_topic = app.topic(
        topic_name(kafka, LATE_EVENTS), key_serializer="raw", value_serializer="raw"
    )
    dead_letter_topic = app.topic(
        dead_letter_codec.topic, key_serializer="raw", value_serializer="raw"
    )
    table = app.Table(
        "camera-windows",
        default=None,
        partitions=partitions,
        key_type=str,
    )

    @app.agent(detections_topic)
    async def count_windows(stream: faust.StreamT[bytes]) -> None:
        async for event_msg in stream.events():
            raw = cast(bytes | None, event_msg.value)
            try:
                event = cast(DetectionEvent, detections_codec.decode(raw))
            except MessageDecodeError as error:
                message = event_msg.message
                log.warning(
                    "dead-lettering detection event partition=%s offset=%s reason=%s",
                    message.partition,
                    message.offset,
                    error,
                )
                record = dead_letter_record(
                    "windows",
                    source_topic=message.topic,
                    source_partition=message.partition,
                    source_offset=message.offset,
                    key=cast(bytes | None, event_msg.key),
                    value=raw,
                    error_type="bad-schema",
                    reason=str(error),
                )
                await dead_letter_topic.send(
                    key=cast(bytes | None, event_msg.key),
                    value=dead_letter_codec.encode(record),
                )
                continue
            partition = event_msg.message.partition
            clock = cast(PartitionClock | None, table.get(clock_key(partition)))
            clock = clock or new_clock()
            start_ms = window_start_ms(event["captured_at_ms"], size_ms)
            if is_closed(start_ms + size_ms, grace_ms, clock["watermark_ms"]):
                LATE_COUNT.inc()
                log.info(
                    "late event routed camera=%s captured_at_ms=%s watermark_ms=%s",
                    event["camera_id"],
                    event["captured_at_ms"],
                    clock["watermark_ms"],
                )
                await late_topic.send(key=cast(bytes | None, event_msg.key), value=raw)
                continue
            key = camera_window_key(event["camera_id"], start_ms)
            state = cast(WindowState | None, table.get(key))
            if state is None:
                state = new_camera_window(event, size_ms)
            now_ms = int(time.time() * 1000)
            if apply_event(state, event, now_ms):
                table[key] = state
                await windows_topic.send(
                    key=key.encode(), value=windows_codec.encode(state["aggregate"])
                )
                if key not in clock["open_keys"]:
                    clock["open_keys"].append(key)
            else:
                log.debug("duplicate event ignored event_id=%s", event["event_id"])
            clock["watermark_ms"] = max(clock["watermark_ms"], event["captured_at_ms"])
            for open_key in list(clock["open_keys"]):
                open_state = cast(WindowState | None, table.get(open_key))
                if open_state is not None and not is_closed(
                    open_state["aggregate"]["window_end_ms"],
                    grace_ms,
                    clock["watermark_ms"],
                ):
                    continue
                clock["open_keys"].remove(open_key)
                if open_state is not None:
                    final = finalize(open_state, now_ms)
                    await windows_topic.send(
                        key=open_key.encode(), value=windows_codec.encode(final)
                    )
                    del table[open_key]
            table[clock_key(partition)] = clock

    log.debug("windows agent registered agent=%s", count_windows.name)
    return app
