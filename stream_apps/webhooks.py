"""``pantau webhooks run``: every alert lifecycle message POSTed to each
subscriber, in order, with retries; what cannot be delivered is dead-lettered.

Each subscriber has its own thread and its own consumer group
(``pantau-webhook-<name>``) on the alerts topic, so a slow or dead subscriber
holds back only itself: never the other subscribers, never the evaluation of
the rules. Within a subscriber, messages go one at a time in topic order, so
the messages of one alert key (one partition) arrive in order. An offset is
committed once its message is delivered or dead-lettered; a message in flight
at shutdown is sent again after the restart, with the same CloudEvents id.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import cast

from confluent_kafka import Consumer, Message
from prometheus_client import Counter

from pantau.config_alerting import WebhookSubscriber
from pantau.dead_letter import DeadLetterPublisher
from pantau.delivery import DeliveryTracker
from pantau.kafka import commit_done, message_error
from pantau.redact import redact_url
from schemas.codec import AvroCodec, MessageDecodeError
from schemas.records import Alert
from stream_apps.webhook_delivery import DeliveryError, cloud_event, post

log = logging.getLogger("pantau.stream_apps.webhooks")

DELIVERIES = Counter(
    "pantau_webhook_deliveries_total",
    "Alert messages handled per subscriber, by outcome",
    ["subscriber", "outcome"],
)
FAILED_ATTEMPTS = Counter(
    "pantau_webhook_failed_attempts_total",
    "POSTs that failed and were retried or dead-lettered",
    ["subscriber"],
)
WEBHOOK_FAILED = "webhook-failed"


def webhook_group(subscriber: WebhookSubscriber) -> str:
    """The consumer group of one subscriber."""
    return f"pantau-webhook-{subscriber.name}"


class WebhookDispatcher:
    """Delivers the alerts topic to one subscriber."""

    def __init__(
        self,
        *,
        subscriber: WebhookSubscriber,
        consumer: Consumer,
        codec: AvroCodec,
        tracker: DeliveryTracker,
        dead_letters: DeadLetterPublisher,
        source: str,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._subscriber = subscriber
        self._consumer = consumer
        self._codec = codec
        self._tracker = tracker
        self._dead_letters = dead_letters
        self._source = source
        self._stop = stop
        self._clock = clock
        self._rules = frozenset(subscriber.rules) if subscriber.rules else None
        self.delivered = 0
        self.dead_lettered = 0

    def run(self) -> None:
        """Deliver until stopped."""
        name = self._subscriber.name
        self._consumer.subscribe([self._codec.topic])
        log.info(
            "webhook subscriber started subscriber=%s url=%s",
            name,
            redact_url(self._subscriber.url),
        )
        try:
            while not self._stop.is_set():
                message = self._consumer.poll(0.5)
                if message is None or message_error(message) is not None:
                    continue
                if not self._handle(message):
                    break  # stopping mid-retry: the message is sent again later
                self._tracker.flush(60.0)
                commit_done(self._consumer, "the delivered alert", message)
        finally:
            self._consumer.close()
            log.info(
                "webhook subscriber stopped subscriber=%s delivered=%s "
                "dead_lettered=%s",
                name,
                self.delivered,
                self.dead_lettered,
            )

    def _handle(self, message: Message) -> bool:
        """Deliver or dead-letter one message; False if asked to stop first."""
        name = self._subscriber.name
        try:
            alert = cast(Alert, self._codec.decode(message.value()))
        except MessageDecodeError as error:
            self._dead_letters.publish(message, "bad-schema", str(error))
            DELIVERIES.labels(name, "bad-schema").inc()
            return True
        if self._rules is not None and alert["rule_id"] not in self._rules:
            DELIVERIES.labels(name, "skipped").inc()
            return True
        body = cloud_event(alert, self._source)
        outcome = self._deliver(body, alert)
        if outcome is None:
            return False
        if outcome:
            self._dead_letters.publish(
                message,
                WEBHOOK_FAILED,
                f"subscriber {name} did not take alert {alert['alert_id']} "
                f"{alert['state']}: {outcome}",
            )
            self.dead_lettered += 1
            DELIVERIES.labels(name, "dead-lettered").inc()
        else:
            self.delivered += 1
            DELIVERIES.labels(name, "delivered").inc()
        return True

    def _deliver(self, body: bytes, alert: Alert) -> str | None:
        """POST with retries: '' when delivered, the last error once the
        budget is spent or the error is final, None when stopped."""
        hook = self._subscriber
        secret = hook.secret.get_secret_value()
        delay_s = hook.backoff_initial_s
        for attempt in range(1, hook.max_attempts + 1):
            try:
                post(hook.url, body, secret, hook.timeout_s, self._clock())
                return ""
            except DeliveryError as error:
                FAILED_ATTEMPTS.labels(hook.name).inc()
                last = f"attempt {attempt} of {hook.max_attempts}: {error}"
                if not error.retryable or attempt == hook.max_attempts:
                    log.warning(
                        "webhook gave up subscriber=%s alert_id=%s state=%s %s",
                        hook.name,
                        alert["alert_id"],
                        alert["state"],
                        last,
                    )
                    return last
                wait_s = min(hook.backoff_max_s, delay_s) * random.uniform(0.8, 1.2)
                log.warning(
                    "webhook failed, retrying subscriber=%s alert_id=%s %s wait_s=%.1f",
                    hook.name,
                    alert["alert_id"],
                    last,
                    wait_s,
                )
                if self._stop.wait(wait_s):
                    return None
                delay_s *= 2
        raise AssertionError("unreachable: the loop returns on its last attempt")
