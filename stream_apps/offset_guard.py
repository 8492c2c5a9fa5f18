"""Catch a consumer that skipped messages, and send it back.

The window stages apply every message of a partition in offset order and keep,
in their changelog-backed clock, the offset of the last one dealt with. A
message further on than the next expected offset means the consumer jumped
over some (faust-streaming can drop fetched messages during a rebalance and
then count them as a gap). The guard then seeks the partition back to the first
missing offset and has the stage drop what arrives before it, so nothing is
skipped silently. Offsets that are no longer on the topic (past retention) are
the only gap it lets through, with a warning.

A seek made while faust is still handing out the rest of an earlier fetch is
undone by it: faust records each message it hands out as the partition's read
position and then drops the re-fetched, older messages. So a seek not answered
within ``RESEEK_AFTER_S`` is made again from a timer (``retry_stalled``), when
no message of that partition is being handed out.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter

log = logging.getLogger("pantau.stream_apps.offsets")

SEEKS = Counter(
    "pantau_windows_consumer_seeks_total",
    "Times a windows consumer skipped messages and was sent back to them",
    ["topic"],
)

# A seek not answered by the expected message within this long is made again.
RESEEK_AFTER_S = 2.0


class OffsetGuard:
    """Per-process bookkeeping of the seeks made for each partition."""

    def __init__(self, consumer: Any) -> None:
        self._consumer = consumer
        self._pending: dict[Any, tuple[int, float]] = {}

    async def in_order(self, tp: Any, offset: int, expected: int | None) -> bool:
        """True when the message at ``offset`` is the one to process next (or
        a replay, which the stage skips itself); False when it must be dropped
        because earlier messages are still to come."""
        if expected is not None and offset <= expected:
            self._pending.pop(tp, None)
            return True
        earliest = (await self._consumer.earliest_offsets(tp))[tp]
        target = earliest if expected is None else max(expected, earliest)
        if offset <= target:
            if expected is not None and target > expected:
                log.warning(
                    "messages expired before they were read topic=%s partition=%s "
                    "first_missing=%s resumed_at=%s",
                    tp.topic,
                    tp.partition,
                    expected,
                    target,
                )
            self._pending.pop(tp, None)
            return True
        pending = self._pending.get(tp)
        now_s = time.monotonic()
        if (
            pending is None
            or pending[0] != target
            or now_s - pending[1] > RESEEK_AFTER_S
        ):
            log.warning(
                "consumer skipped messages, seeking back topic=%s partition=%s "
                "expected_offset=%s got_offset=%s",
                tp.topic,
                tp.partition,
                target,
                offset,
            )
            SEEKS.labels(tp.topic).inc()
            await self._consumer.seek(tp, target)
            self._pending[tp] = (target, now_s)
        return False

    async def retry_stalled(self) -> None:
        """Seek again every partition whose expected message has not come
        within ``RESEEK_AFTER_S`` of its last seek; forget partitions this
        worker no longer owns."""
        if not self._pending:
            return
        assigned = self._consumer.assignment()
        now_s = time.monotonic()
        for tp, (target, sought_at_s) in list(self._pending.items()):
            if tp not in assigned:
                del self._pending[tp]
                continue
            if now_s - sought_at_s < RESEEK_AFTER_S:
                continue
            log.info(
                "seeking again, expected message not read yet topic=%s "
                "partition=%s expected_offset=%s",
                tp.topic,
                tp.partition,
                target,
            )
            SEEKS.labels(tp.topic).inc()
            await self._consumer.seek(tp, target)
            self._pending[tp] = (target, now_s)
