"""Catch a consumer that skipped messages, and read them back.

The window stages apply every message of a partition in offset order and keep,
in their changelog-backed clock, the offset of the last one dealt with. A
message further on than the next expected offset means the consumer jumped
over some: faust-streaming can drop fetched messages during a rebalance, and
its committed offset may already be past them.

Seeking faust's consumer back does not reliably work: faust records every
message it hands out as the partition's read position and drops re-fetched
older ones, and after a rebalance it seeks to its committed offset again. So
the guard reads the skipped messages itself, with a plain consumer assigned to
that one partition, and the stage applies them before the message at hand.
Offsets no longer on the topic (past retention) are the only gap it lets
through, with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Counter

log = logging.getLogger("pantau.stream_apps.offsets")

GAPS = Counter(
    "pantau_windows_gap_messages_total",
    "Messages a windows consumer skipped and the guard read back itself",
    ["topic"],
)


class GapError(RuntimeError):
    """Skipped messages could not be read back."""


class RawMessage(NamedTuple):
    """One message read back: where it was, and its bytes."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class OffsetGuard:
    """Finds the messages between the expected offset and the one that arrived."""

    def __init__(self, consumer_config: dict[str, Any], timeout_s: float = 60.0):
        self._config = consumer_config
        self._timeout_s = timeout_s

    async def missing(
        self, topic: str, partition: int, offset: int, expected: int | None
    ) -> list[RawMessage]:
        """The messages before ``offset`` that the stage has not seen, oldest
        first: none when ``offset`` is the expected one (or a replay)."""
        if expected is not None and offset <= expected:
            return []
        return await asyncio.to_thread(self._read, topic, partition, expected, offset)

    def _read(
        self, topic: str, partition: int, expected: int | None, end: int
    ) -> list[RawMessage]:
        consumer = Consumer(self._config)
        try:
            low, _ = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            start = low if expected is None else max(expected, low)
            if expected is not None and start > expected:
                log.warning(
                    "messages expired before they were read topic=%s partition=%s "
                    "first_missing=%s resumed_at=%s",
                    topic,
                    partition,
                    expected,
                    start,
                )
            if start >= end:
                return []
            log.warning(
                "consumer skipped messages, reading them back topic=%s "
                "partition=%s from_offset=%s to_offset=%s",
                topic,
                partition,
                start,
                end,
            )
            consumer.assign([TopicPartition(topic, partition, start)])
            found: list[RawMessage] = []
            deadline = time.monotonic() + self._timeout_s
            while not found or found[-1].offset < end - 1:
                if time.monotonic() > deadline:
                    raise GapError(
                        f"could not read back skipped messages of {topic} "
                        f"[{partition}]: expected offsets {start}..{end - 1} within "
                        f"{self._timeout_s:.0f} s, got {len(found)}; check the broker"
                    )
                message = consumer.poll(0.5)
                if message is None:
                    # Offsets can be missing (compaction, transaction markers).
                    [position] = consumer.position([TopicPartition(topic, partition)])
                    if position.offset >= end:
                        break
                    continue
                if message.error() is not None:
                    log.warning(
                        "reading skipped messages topic=%s partition=%s error=%s",
                        topic,
                        partition,
                        message.error(),
                    )
                    continue
                offset = message.offset()
                if offset is None or offset >= end:
                    break
                found.append(
                    RawMessage(topic, partition, offset, message.key(), message.value())
                )
        except KafkaException as error:
            raise GapError(
                f"could not read back skipped messages of {topic} [{partition}]: "
                f"{error}; check the broker"
            ) from error
        finally:
            consumer.close()
        GAPS.labels(topic).inc(len(found))
        return found
