"""Poison messages go to the dead-letter topic with a reason; the service goes on."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Message

from pantau.config import KafkaConfig
from pantau.delivery import DeliveryTracker
from pantau.kafka import topic_name
from schemas.codec import AvroCodec
from schemas.records import DeadLetter
from schemas.registry import SchemaResolver
from schemas.topics import DEAD_LETTER

log = logging.getLogger("pantau.dead_letter")


def dead_letter_record(
    service: str,
    *,
    source_topic: str,
    source_partition: int,
    source_offset: int,
    key: bytes | None,
    value: bytes | None,
    error_type: str,
    reason: str,
) -> DeadLetter:
    """The dead-letter record for one message that could not be processed."""
    return {
        "service": service,
        "source_topic": source_topic,
        "source_partition": source_partition,
        "source_offset": source_offset,
        "error_type": error_type,
        "reason": reason,
        "failed_at_ms": int(time.time() * 1000),
        "original_key": key,
        "original_value": value,
    }


class DeadLetterPublisher:
    """Publishes poison messages through the service's own producer, so the
    service's flush-before-commit covers them too."""

    def __init__(
        self,
        tracker: DeliveryTracker,
        kafka: KafkaConfig,
        resolver: SchemaResolver,
        service: str,
    ) -> None:
        self._tracker = tracker
        self._service = service
        self._topic = topic_name(kafka, DEAD_LETTER)
        self._codec = AvroCodec(self._topic, DEAD_LETTER.record_type, resolver)
        self.published = 0

    def publish(self, message: Message, error_type: str, reason: str) -> None:
        """Send one consumed message to the dead-letter topic with why it failed."""
        topic, partition, offset = (
            message.topic(),
            message.partition(),
            message.offset(),
        )
        log.warning(
            "dead-lettering message service=%s topic=%s partition=%s offset=%s "
            "error_type=%s reason=%s",
            self._service,
            topic,
            partition,
            offset,
            error_type,
            reason,
        )
        record = dead_letter_record(
            self._service,
            source_topic=topic or "",
            source_partition=partition if partition is not None else -1,
            source_offset=offset if offset is not None else -1,
            key=message.key(),
            value=message.value(),
            error_type=error_type,
            reason=reason,
        )
        self._tracker.producer.produce(
            self._topic,
            key=message.key(),
            value=self._codec.encode(record),
            on_delivery=self._tracker.on_delivery,
        )
        self.published += 1
