"""Webhook delivery against real HTTP receivers on loopback: signed
CloudEvents in order, retries on 5xx and timeouts, the dead-letter path, and a
dead subscriber that holds back no one else."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from infra.kafka_broker import EmbeddedKafka
from infra.topics_admin import ensure_topics
from pantau.alert_services import build_webhook_dispatchers
from pantau.config import PantauConfig
from pantau.kafka import topic_name
from schemas.codec import AvroCodec
from schemas.records import Alert
from schemas.registry import LocalResolver
from schemas.topics import ALERTS, DEAD_LETTER
from stream_apps.webhook_delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.conftest import make_config
from tests.kafka_io import read_until
from tests.webhook_receiver import STALL, Receiver, webhook_receiver

pytestmark = pytest.mark.integration

SECRET = "a shared secret of the city"
T0 = 1_767_225_600_000


def hooks_config(
    bootstrap: str, topic_prefix: str, tmp_path: Path, hooks: list[dict[str, Any]]
) -> PantauConfig:
    config = make_config(bootstrap, topic_prefix, tmp_path)
    alerting = {
        "source": "pantau/test",
        "rules": [{"id": "crowded", "metric": "people_density", "scope": "CAMERA"}],
        "webhooks": [
            {
                "secret": SECRET,
                "timeout_s": 0.5,
                "backoff_initial_s": 0.05,
                "backoff_max_s": 0.2,
                **hook,
            }
            for hook in hooks
        ],
    }
    return config.model_copy(
        update={"alerting": config.alerting.model_validate(alerting)}
    )


def alert(number: int, camera: str = "cam-1") -> Alert:
    firing = number % 2 == 0
    return {
        "alert_id": f"a-{camera}-{number // 2}",
        "rule_id": "crowded",
        "scope_level": "CAMERA",
        "scope_id": camera,
        "state": "FIRING" if firing else "RESOLVED",
        "metric": "people_density",
        "value": 4.0 + number,
        "threshold": 3.0,
        "fired_at_ms": T0 + number * 1000 - (0 if firing else 1000),
        "resolved_at_ms": None if firing else T0 + number * 1000,
        "message": f"message {number}",
    }


def publish(config: PantauConfig, bootstrap: str, alerts: list[Alert]) -> None:
    topic = topic_name(config.kafka, ALERTS)
    codec = AvroCodec(topic, "alert", LocalResolver())
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in alerts:
        key = f"crowded:CAMERA:{record['scope_id']}".encode()
        producer.produce(topic, key=key, value=codec.encode(record))
    assert producer.flush(10) == 0


def run_dispatchers(
    config: PantauConfig, bootstrap: str, done: Any, timeout_s: float = 60
) -> None:
    stop = threading.Event()
    dispatchers = build_webhook_dispatchers(config, bootstrap, stop)
    threads = [threading.Thread(target=d.run) for d in dispatchers]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + timeout_s
        while not done():
            assert time.monotonic() < deadline, "deliveries did not get there"
            time.sleep(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not any(thread.is_alive() for thread in threads)


def events(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.delivered()]


def test_signed_cloudevents_arrive_in_order_despite_failures(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    # Two 5xx answers and a stall past the client's timeout, then success.
    with webhook_receiver(script=[500, 503, STALL], stall_s=1.5) as receiver:
        config = hooks_config(
            bootstrap, topic_prefix, tmp_path, [{"name": "city", "url": receiver.url}]
        )
        ensure_topics(config.kafka, bootstrap)
        sent = [alert(number) for number in range(6)]
        publish(config, bootstrap, sent)
        run_dispatchers(config, bootstrap, lambda: len(receiver.delivered()) >= 6)

        got = events(receiver)
        # The stalled attempt may also have been taken late: drop repeats by id.
        unique = list({event["id"]: event for event in got}.values())
        assert [e["data"]["message"] for e in unique] == [a["message"] for a in sent]
        first = unique[0]
        assert first["specversion"] == "1.0"
        assert first["type"] == "id.pantau.alert.firing"
        assert unique[1]["type"] == "id.pantau.alert.resolved"
        assert first["source"] == "pantau/test"
        assert first["subject"] == "crowded:CAMERA:cam-1"
        assert first["id"] == "a-cam-1-0-firing"
        assert first["time"] == "2026-01-01T00:00:00.000Z"
        assert first["data"]["value"] == 4.0
        for request in receiver.requests:
            assert request.headers["Content-Type"] == "application/cloudevents+json"
            assert verify(
                SECRET,
                request.headers[TIMESTAMP_HEADER],
                request.body,
                request.headers[SIGNATURE_HEADER],
                now_s=time.time(),
            )
            assert not verify(
                "another secret!!",
                request.headers[TIMESTAMP_HEADER],
                request.body,
                request.headers[SIGNATURE_HEADER],
                now_s=time.time(),
            )
        answers = [r.answered for r in receiver.requests]
        assert answers[:2] == [500, 503]


def test_undeliverable_alerts_are_dead_lettered_and_others_go_on(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    with (
        webhook_receiver(default=500) as broken,
        webhook_receiver(script=[400]) as refusing,
        webhook_receiver(default=STALL, stall_s=5) as dead,
        webhook_receiver() as healthy,
    ):
        config = hooks_config(
            bootstrap,
            topic_prefix,
            tmp_path,
            [
                {"name": "broken", "url": broken.url, "max_attempts": 3},
                {"name": "refusing", "url": refusing.url},
                {"name": "dead", "url": dead.url, "max_attempts": 100},
                {"name": "healthy", "url": healthy.url},
            ],
        )
        ensure_topics(config.kafka, bootstrap)
        publish(config, bootstrap, [alert(0), alert(1)])

        dead_letters = topic_name(config.kafka, DEAD_LETTER)

        def letters() -> list[dict[str, Any]]:
            return [
                record
                for _, record in read_until(
                    bootstrap, dead_letters, "dead_letter", lambda got: len(got) >= 3, 1
                )
            ]

        started = time.monotonic()
        run_dispatchers(
            config,
            bootstrap,
            lambda: (
                len(healthy.delivered()) == 2
                and len(refusing.delivered()) == 1
                and len(letters()) >= 3
            ),
        )
        # The healthy subscriber was not held back by the dead one, which
        # never answers in time and has a budget of 100 attempts.
        assert time.monotonic() - started < 30
        assert len(dead.delivered()) == 0

    records = letters()
    assert all(r["error_type"] == "webhook-failed" for r in records)
    assert all(r["service"] == "webhooks" for r in records)
    reasons = sorted(r["reason"] for r in records)
    broken_reasons = [r for r in reasons if "subscriber broken" in r]
    assert len(broken_reasons) == 2
    assert all("attempt 3 of 3: HTTP 500" in r for r in broken_reasons)
    # A 400 is final: one attempt, no retry, and the next alert is delivered.
    [refused] = [r for r in reasons if "subscriber refusing" in r]
    assert "attempt 1 of 6: HTTP 400" in refused
    assert len(refusing.requests) == 2
