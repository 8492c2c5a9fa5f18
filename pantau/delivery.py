"""Track producer deliveries so that offsets are committed only after every
message a batch produced has been acknowledged by the broker."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger("pantau.delivery")


class DeliveryFailedError(RuntimeError):
    """At least one produced message was not acknowledged by the broker."""


class DeliveryTracker:
    """Counts outstanding deliveries of one producer and remembers failures."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.delivered = 0
        self._failures: list[str] = []

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        """Delivery callback to pass to ``Producer.produce``."""
        if error is None:
            self.delivered += 1
            return
        detail = f"topic={message.topic()} code={error.name()} reason={error.str()}"
        log.error("delivery failed %s", detail)
        self._failures.append(detail)

    def flush(self, timeout_s: float) -> None:
        """Wait for every outstanding delivery; raise if any failed or timed out."""
        remaining = self.producer.flush(timeout_s)
        failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} message(s) still unacknowledged")
        if failures:
            raise DeliveryFailedError(
                f"expected every message acknowledged within {timeout_s}s, got "
                f"{len(failures)} failure(s): {'; '.join(failures[:3])}"
            )
