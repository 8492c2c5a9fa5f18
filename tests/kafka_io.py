"""Reading Pantau topics in tests: by partition assignment, so no consumer-group
join can delay or miss anything."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from schemas.codec import AvroCodec
from schemas.registry import LocalResolver

Keyed = tuple[bytes | None, dict[str, Any]]


def _assigned(bootstrap: str, topic: str) -> tuple[Consumer, list[int]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "pantau-tests-unused",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    return consumer, partitions


def read_until(
    bootstrap: str,
    topic: str,
    record_type: str,
    done: Callable[[list[Keyed]], bool],
    timeout_s: float = 60.0,
) -> list[Keyed]:
    """Messages from the start of a topic, read until ``done`` holds for what has
    been read or the timeout passes."""
    consumer, _ = _assigned(bootstrap, topic)
    codec = AvroCodec(topic, record_type, LocalResolver())
    found: list[Keyed] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(found) and time.monotonic() < deadline:
            message = consumer.poll(0.3)
            if message is not None and message.error() is None:
                found.append((message.key(), codec.decode(message.value())))
    finally:
        consumer.close()
    return found


def _end_offset(consumer: Consumer, topic: str, partition: int) -> int:
    """The end offset of a partition; a topic created a moment ago may not have
    a leader yet, so transient errors are retried for a few seconds."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return int(
                consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )[1]
            )
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def read_topic(
    bootstrap: str, topic: str, record_type: str, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Every message on a topic now: read up to the end offsets seen at the call."""
    consumer, partitions = _assigned(bootstrap, topic)
    try:
        ends = {p: _end_offset(consumer, topic, p) for p in partitions}
    finally:
        consumer.close()
    total = sum(ends.values())
    records = read_until(
        bootstrap, topic, record_type, lambda got: len(got) >= total, timeout_s
    )
    assert len(records) == total, f"{topic}: read {len(records)} of {total}"
    return [record for _, record in records]
