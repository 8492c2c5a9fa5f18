"""Build and run the alert evaluator and the webhook dispatchers."""

from __future__ import annotations

import logging
import threading

from infra.topics_admin import ensure_topics
from pantau.config import PantauConfig
from pantau.dead_letter import DeadLetterPublisher
from pantau.delivery import DeliveryTracker
from pantau.kafka import make_consumer, make_producer, make_resolver, topic_name
from pantau.runtime import install_stop_handlers
from pantau.services import client_id, serve_metrics
from schemas.codec import AvroCodec
from schemas.topics import ALERTS, CAMERA_STATUS, WINDOWS
from stream_apps.alert_rules import RuleSet
from stream_apps.alerting import ALERTING_GROUP, AlertEvaluator, restore_book
from stream_apps.webhooks import WebhookDispatcher, webhook_group

log = logging.getLogger("pantau.services")


def build_alert_evaluator(
    config: PantauConfig, bootstrap: str, stop: threading.Event
) -> AlertEvaluator:
    """The evaluator with its alert states restored, not yet running."""
    kafka = config.kafka
    ensure_topics(kafka, bootstrap)
    resolver = make_resolver(kafka)
    name = client_id("alerting")
    alerts_codec = AvroCodec(topic_name(kafka, ALERTS), ALERTS.record_type, resolver)
    reader = make_consumer(kafka, bootstrap, f"{ALERTING_GROUP}-restore", name)
    try:
        book = restore_book(reader, alerts_codec)
    finally:
        reader.close()
    tracker = DeliveryTracker(make_producer(kafka, bootstrap, name))
    return AlertEvaluator(
        rules=RuleSet(list(config.alerting.rules), book),
        windows_consumer=make_consumer(kafka, bootstrap, ALERTING_GROUP, name),
        # Assigned, never committed: camera states are read from the start.
        status_consumer=make_consumer(
            kafka, bootstrap, f"{ALERTING_GROUP}-status", name
        ),
        windows_codec=AvroCodec(
            topic_name(kafka, WINDOWS), WINDOWS.record_type, resolver
        ),
        status_codec=AvroCodec(
            topic_name(kafka, CAMERA_STATUS), CAMERA_STATUS.record_type, resolver
        ),
        alerts_codec=alerts_codec,
        tracker=tracker,
        dead_letters=DeadLetterPublisher(tracker, kafka, resolver, "alerting"),
        tick_s=config.alerting.tick_s,
        stop=stop,
    )


def run_alerting(
    config: PantauConfig, bootstrap: str, *, metrics_port: int | None = None
) -> None:
    """Judge the alert rules until SIGINT/SIGTERM."""
    stop = threading.Event()
    install_stop_handlers(stop, "alerting")
    serve_metrics(metrics_port)
    if not config.alerting.rules:
        log.info("no alert rules configured: the evaluator only keeps its offsets")
    build_alert_evaluator(config, bootstrap, stop).run()


def build_webhook_dispatchers(
    config: PantauConfig, bootstrap: str, stop: threading.Event
) -> list[WebhookDispatcher]:
    """One dispatcher per configured subscriber, not yet running."""
    kafka = config.kafka
    ensure_topics(kafka, bootstrap)
    resolver = make_resolver(kafka)
    dispatchers = []
    for subscriber in config.alerting.webhooks:
        name = client_id(f"webhook-{subscriber.name}")
        tracker = DeliveryTracker(make_producer(kafka, bootstrap, name))
        dispatchers.append(
            WebhookDispatcher(
                subscriber=subscriber,
                consumer=make_consumer(
                    kafka, bootstrap, webhook_group(subscriber), name
                ),
                codec=AvroCodec(
                    topic_name(kafka, ALERTS), ALERTS.record_type, resolver
                ),
                tracker=tracker,
                dead_letters=DeadLetterPublisher(tracker, kafka, resolver, "webhooks"),
                source=config.alerting.source,
                stop=stop,
            )
        )
    return dispatchers


def run_webhooks(
    config: PantauConfig, bootstrap: str, *, metrics_port: int | None = None
) -> None:
    """Deliver alerts to every subscriber, one thread each, until
    SIGINT/SIGTERM."""
    stop = threading.Event()
    install_stop_handlers(stop, "webhooks")
    serve_metrics(metrics_port)
    dispatchers = build_webhook_dispatchers(config, bootstrap, stop)
    if not dispatchers:
        log.info("no webhook subscribers configured: waiting for a stop signal")
        stop.wait()
        return
    threads = [
        threading.Thread(target=d.run, name=f"webhook-{hook.name}")
        for d, hook in zip(dispatchers, config.alerting.webhooks, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
