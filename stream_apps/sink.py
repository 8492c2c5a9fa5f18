"""Land a topic in a ClickHouse table: batch, insert with Arrow, then commit.

Kafka offsets are committed only after ClickHouse has accepted the batch. When
ClickHouse is unavailable the consumer pauses, retries with backoff and resumes;
rows delivered twice collapse in the ReplacingMergeTree tables. One sink runs
per topic: window aggregates into ``windows``, detection events into
``detections``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from confluent_kafka import Consumer, Message
from prometheus_client import Counter

from pantau.clickhouse import ClickHouseUnavailableError
from pantau.dead_letter import DeadLetterPublisher
from pantau.delivery import DeliveryTracker
from pantau.kafka import commit_done, message_error
from schemas.codec import AvroCodec, MessageDecodeError

log = logging.getLogger("pantau.stream_apps.sink")

ROWS = Counter(
    "pantau_sink_rows_total", "Rows inserted into ClickHouse, by table", ["table"]
)
INSERT_FAILURES = Counter(
    "pantau_sink_insert_failures_total", "Failed inserts, by table", ["table"]
)

_MAX_BACKOFF_S = 30.0


class ClickHouseSink:
    """Consumes one topic and inserts batches of its records into one table."""

    def __init__(
        self,
        *,
        table: str,
        to_arrow: Callable[[list[Any]], pa.Table],
        consumer: Consumer,
        connect: Callable[[], Client],
        database: str,
        codec: AvroCodec,
        tracker: DeliveryTracker,
        dead_letters: DeadLetterPublisher,
        batch_rows: int,
        batch_interval_s: float,
        stop: threading.Event,
    ) -> None:
        self._table = table
        self._to_arrow = to_arrow
        self._consumer = consumer
        self._connect = connect
        self._client: Client | None = None
        self._database = database
        self._codec = codec
        self._tracker = tracker
        self._dead_letters = dead_letters
        self._batch_rows = batch_rows
        self._batch_interval_s = batch_interval_s
        self._stop = stop
        self.rows_inserted = 0

    def run(self) -> None:
        """Consume and insert until stopped; the last batch is flushed first."""
        self._consumer.subscribe([self._codec.topic])
        log.info(
            "sink started topic=%s table=%s.%s batch_rows=%s batch_interval_s=%s",
            self._codec.topic,
            self._database,
            self._table,
            self._batch_rows,
            self._batch_interval_s,
        )
        pending: list[Any] = []
        consumed = 0
        batch_started = time.monotonic()
        try:
            while not self._stop.is_set():
                timeout = max(
                    0.05, batch_started + self._batch_interval_s - time.monotonic()
                )
                messages = self._consumer.consume(
                    self._batch_rows - len(pending), timeout=min(timeout, 0.5)
                )
                for message in messages:
                    if message_error(message) is None:
                        consumed += 1
                        self._decode_into(message, pending)
                due = time.monotonic() - batch_started >= self._batch_interval_s
                if len(pending) >= self._batch_rows or (due and consumed):
                    self._flush(pending)
                    pending, consumed = [], 0
                if due:
                    batch_started = time.monotonic()
            if consumed:
                self._flush(pending)
        finally:
            self._consumer.close()
            log.info(
                "sink stopped table=%s rows_inserted=%s",
                self._table,
                self.rows_inserted,
            )

    def _decode_into(self, message: Message, pending: list[Any]) -> None:
        try:
            pending.append(self._codec.decode(message.value()))
        except MessageDecodeError as error:
            self._dead_letters.publish(message, "bad-schema", str(error))

    def _flush(self, rows: list[Any]) -> None:
        if rows and not self._insert_with_retry(rows):
            log.warning(
                "stopping with an uninserted batch; Kafka will redeliver it rows=%s",
                len(rows),
            )
            return
        self._tracker.flush(60.0)
        commit_done(self._consumer, f"the rows inserted into {self._table}")

    def _insert_with_retry(self, rows: list[Any]) -> bool:
        """Insert until ClickHouse accepts; False if asked to stop first."""
        table = self._to_arrow(rows)
        backoff_s = 0.5
        paused = False
        while True:
            try:
                if self._client is None:
                    self._client = self._connect()
                self._client.insert_arrow(self._table, table, database=self._database)
                break
            except (ClickHouseError, ClickHouseUnavailableError) as error:
                INSERT_FAILURES.labels(self._table).inc()
                if self._stop.is_set():
                    return False
                self._client = None
                if not paused:
                    self._consumer.pause(self._consumer.assignment())
                    paused = True
                log.warning(
                    "ClickHouse insert failed, retrying table=%s rows=%s "
                    "backoff_s=%.1f error=%s",
                    self._table,
                    len(rows),
                    backoff_s,
                    str(error).splitlines()[0][:300],
                )
                # Polling while paused keeps the group membership alive.
                deadline = time.monotonic() + backoff_s
                while time.monotonic() < deadline:
                    self._consumer.poll(min(0.5, backoff_s))
                backoff_s = min(_MAX_BACKOFF_S, backoff_s * 2)
        if paused:
            self._consumer.resume(self._consumer.assignment())
            log.info("ClickHouse accepted the batch again rows=%s", len(rows))
        self.rows_inserted += len(rows)
        ROWS.labels(self._table).inc(len(rows))
        return True
