"""``pantau events replay`` and ``pantau events tail``: detection events from JSON
lines into the detections topic (backfills, tests), and any Pantau topic decoded
to JSON lines."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from pantau.config import KafkaConfig
from pantau.delivery import DeliveryTracker
from pantau.errors import UsageError
from pantau.kafka import consumer_config, make_resolver, producer_config, topic_name
from schemas.codec import AvroCodec, MessageDecodeError, MessageEncodeError
from schemas.topics import ALL_TOPICS, DETECTIONS, TopicSpec


def topic_spec(kafka: KafkaConfig, name: str) -> TopicSpec:
    """The catalogue entry for a topic given with or without the prefix."""
    for spec in ALL_TOPICS:
        if name in {spec.name, topic_name(kafka, spec)}:
            return spec
    known = ", ".join(spec.name for spec in ALL_TOPICS)
    raise UsageError(f"unknown topic {name!r}; expected one of {known}")


def read_event_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, event) for each non-blank line of a JSON-lines file."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UsageError(f"{path}:{number}: not JSON: {error.msg}") from None
            if not isinstance(record, dict):
                raise UsageError(
                    f"{path}:{number}: expected a JSON object (one detection event), "
                    f"got {type(record).__name__}"
                )
            yield number, record


def replay(kafka: KafkaConfig, bootstrap: str, path: Path) -> int:
    """Publish every event of ``path`` to the detections topic, keyed by camera
    id; the whole file is checked against the schema before anything is sent."""
    codec = AvroCodec(
        topic_name(kafka, DETECTIONS), "detection_event", make_resolver(kafka)
    )
    messages: list[tuple[bytes, bytes]] = []
    for number, record in read_event_lines(path):
        try:
            messages.append(
                (str(record.get("camera_id", "")).encode(), codec.encode(record))
            )
        except MessageEncodeError as error:
            raise UsageError(f"{path}:{number}: {error}") from None
    tracker = DeliveryTracker(
        Producer(producer_config(kafka, bootstrap, "pantau-events-replay"))
    )
    for key, value in messages:
        while True:
            try:
                tracker.producer.produce(
                    codec.topic, key=key, value=value, on_delivery=tracker.on_delivery
                )
                break
            except BufferError:
                tracker.producer.poll(0.1)
        tracker.producer.poll(0)
    tracker.flush(120.0)
    return len(messages)


def _json_ready(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode(), "bytes": len(value)}
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


def tail(
    kafka: KafkaConfig,
    bootstrap: str,
    name: str,
    out: TextIO,
    *,
    from_beginning: bool,
    max_messages: int | None,
    idle_timeout_s: float | None,
) -> int:
    """Print decoded messages of a topic as JSON lines until ``max_messages``,
    ``idle_timeout_s`` without a message, or Ctrl-C; returns how many."""
    spec = topic_spec(kafka, name)
    topic = topic_name(kafka, spec)
    codec = (
        AvroCodec(topic, spec.record_type, make_resolver(kafka))
        if spec.encoding == "avro"
        else None
    )
    consumer = Consumer(
        consumer_config(kafka, bootstrap, "pantau-events-tail", "pantau-events-tail")
    )
    printed = 0
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise UsageError(f"topic {topic} does not exist on {bootstrap}")
        partitions = []
        for partition in metadata.partitions:
            start = OFFSET_BEGINNING
            if not from_beginning:
                start = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )[1]
            partitions.append(TopicPartition(topic, partition, start))
        consumer.assign(partitions)
        last_message = time.monotonic()
        while max_messages is None or printed < max_messages:
            message = consumer.poll(0.5)
            if message is None or message.error() is not None:
                if idle_timeout_s is not None and (
                    time.monotonic() - last_message >= idle_timeout_s
                ):
                    break
                continue
            last_message = time.monotonic()
            key = (message.key() or b"").decode(errors="replace")
            value: Any
            try:
                if codec is None:
                    value = json.loads(message.value() or b"null")
                else:
                    value = _json_ready(codec.decode(message.value()))
            except (MessageDecodeError, ValueError) as error:
                value = {"undecodable": str(error)}
            line = {
                "topic": topic,
                "partition": message.partition(),
                "offset": message.offset(),
                "key": key,
                "value": value,
            }
            out.write(json.dumps(line) + "\n")
            out.flush()
            printed += 1
    finally:
        consumer.close()
    return printed
