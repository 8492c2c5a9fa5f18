"""``pantau alerts run``: the alert rules judged against window results and
camera health, with lifecycle messages published on the compacted alerts topic.

At start the evaluator reads the alerts topic to its end and restores, per
rule and scope, whether an alert is firing and when it last changed. It then
consumes

- ``pantau.windows`` in the group ``pantau-alerting``, committing offsets only
  after the alerts they caused are acknowledged, and
- ``pantau.camera-status`` from its beginning on every start (it is compacted
  to one message per camera), so that a camera still offline is known at once.

Samples at or before a key's last change are ignored, so input read again
after a crash never fires an alert twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from prometheus_client import Counter, Gauge

from pantau.dead_letter import DeadLetterPublisher
from pantau.delivery import DeliveryTracker
from pantau.kafka import commit_done, message_error
from schemas.codec import AvroCodec, MessageDecodeError
from schemas.records import Alert, CameraStatus, WindowAggregate
from stream_apps.alert_rules import RuleSet
from stream_apps.alert_state import AlertBook, AlertKey

log = logging.getLogger("pantau.stream_apps.alerting")

ALERTING_GROUP = "pantau-alerting"
ALERTS = Counter(
    "pantau_alerts_total", "Alert lifecycle messages published", ["rule", "state"]
)
FIRING = Gauge("pantau_alerts_firing", "Alerts firing now")
_COMMIT_EVERY_S = 1.0


def read_to_end(consumer: Consumer, topic: str) -> list[Message]:
    """Every message of ``topic`` from its beginning to its end as of now."""
    metadata = consumer.list_topics(topic, timeout=30)
    partitions = sorted(metadata.topics[topic].partitions)
    ends = {
        partition: consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=30
        )[1]
        for partition in partitions
    }
    consumer.assign(
        [TopicPartition(topic, partition, OFFSET_BEGINNING) for partition in partitions]
    )
    messages: list[Message] = []
    remaining = {partition for partition, end in ends.items() if end > 0}
    deadline = time.monotonic() + 120
    while remaining:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"expected to read {topic} to its end within 120 s, got "
                f"{len(messages)} messages with partitions {sorted(remaining)} unread"
            )
        for message in consumer.consume(1000, timeout=0.5):
            if message_error(message) is not None:
                continue
            messages.append(message)
            offset = message.offset()
            if offset is not None and offset + 1 >= ends[message.partition() or 0]:
                remaining.discard(message.partition() or 0)
    consumer.unassign()
    return messages


def restore_book(consumer: Consumer, codec: AvroCodec) -> AlertBook:
    """The alert states recorded on the alerts topic."""
    book = AlertBook()
    restored = 0
    for message in read_to_end(consumer, codec.topic):
        try:
            alert = cast(Alert, codec.decode(message.value()))
        except MessageDecodeError as error:
            log.warning("skipping an unreadable alert message: %s", error)
            continue
        book.restore(alert)
        restored += 1
    log.info(
        "alert states restored messages=%s keys=%s firing=%s",
        restored,
        len(book.states),
        len(book.firing()),
    )
    return book


class AlertEvaluator:
    """The consume, judge, publish and commit loop."""

    def __init__(
        self,
        *,
        rules: RuleSet,
        windows_consumer: Consumer,
        status_consumer: Consumer,
        windows_codec: AvroCodec,
        status_codec: AvroCodec,
        alerts_codec: AvroCodec,
        tracker: DeliveryTracker,
        dead_letters: DeadLetterPublisher,
        tick_s: float,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rules = rules
        self._windows = windows_consumer
        self._status = status_consumer
        self._windows_codec = windows_codec
        self._status_codec = status_codec
        self._alerts_codec = alerts_codec
        self._tracker = tracker
        self._dead_letters = dead_letters
        self._tick_s = tick_s
        self._stop = stop
        self._clock = clock
        self.published = 0
        self.windows_read = 0

    def run(self) -> None:
        """Judge until stopped; the last alerts are flushed and committed."""
        self._windows.subscribe([self._windows_codec.topic])
        status_topic = self._status_codec.topic
        partitions = self._status.list_topics(status_topic, timeout=30).topics[
            status_topic
        ]
        self._status.assign(
            [
                TopicPartition(status_topic, partition, OFFSET_BEGINNING)
                for partition in partitions.partitions
            ]
        )
        FIRING.set(len(self._rules.book.firing()))
        log.info("alert evaluator started windows=%s", self._windows_codec.topic)
        last_commit = last_tick = time.monotonic()
        uncommitted = False
        try:
            while not self._stop.is_set():
                for message in self._windows.consume(500, timeout=0.2):
                    if message_error(message) is None:
                        uncommitted = True
                        self._on_window(message)
                for message in self._status.consume(500, timeout=0):
                    if message_error(message) is None:
                        self._on_status(message)
                now = time.monotonic()
                if now - last_tick >= self._tick_s:
                    self._publish(self._rules.tick(int(self._clock() * 1000)))
                    last_tick = now
                if uncommitted and now - last_commit >= _COMMIT_EVERY_S:
                    self._commit()
                    uncommitted, last_commit = False, now
            self._tracker.flush(60.0)
            if uncommitted:
                self._commit()
        finally:
            self._windows.close()
            self._status.close()
            log.info("alert evaluator stopped published=%s", self.published)

    def _on_window(self, message: Message) -> None:
        self.windows_read += 1
        try:
            window = cast(WindowAggregate, self._windows_codec.decode(message.value()))
        except MessageDecodeError as error:
            self._dead_letters.publish(message, "bad-schema", str(error))
            return
        self._publish(self._rules.on_window(window))

    def _on_status(self, message: Message) -> None:
        try:
            status = cast(CameraStatus, self._status_codec.decode(message.value()))
        except MessageDecodeError as error:
            # Read again at every start: dead-letter it only the first time.
            log.warning("skipping an unreadable camera status: %s", error)
            return
        self._publish(self._rules.on_status(status))

    def _publish(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            key = AlertKey(alert["rule_id"], alert["scope_level"], alert["scope_id"])
            self._tracker.producer.produce(
                self._alerts_codec.topic,
                key=key.text.encode(),
                value=self._alerts_codec.encode(alert),
                on_delivery=self._tracker.on_delivery,
            )
            self.published += 1
            ALERTS.labels(alert["rule_id"], alert["state"]).inc()
            log.info(
                "alert %s rule=%s scope=%s:%s value=%.3f alert_id=%s",
                alert["state"].lower(),
                alert["rule_id"],
                alert["scope_level"],
                alert["scope_id"],
                alert["value"],
                alert["alert_id"],
            )
        if alerts:
            FIRING.set(len(self._rules.book.firing()))
            self._tracker.producer.poll(0)

    def _commit(self) -> None:
        self._tracker.flush(60.0)
        commit_done(self._windows, "the judged windows")
