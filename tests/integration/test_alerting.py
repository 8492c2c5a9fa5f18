"""The alert evaluator against the real broker: windows and camera states in,
alert lifecycle messages out, and no alert fired twice when its input is read
again after a restart."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from infra.kafka_broker import EmbeddedKafka
from infra.topics_admin import ensure_topics
from pantau.alert_services import build_alert_evaluator
from pantau.config import PantauConfig
from pantau.kafka import topic_name
from schemas.codec import AvroCodec
from schemas.records import CameraStatus, WindowAggregate
from schemas.registry import LocalResolver
from schemas.topics import ALERTS, CAMERA_STATUS, WINDOWS
from stream_apps import alerting
from stream_apps.alerting import AlertEvaluator
from tests.conftest import make_config
from tests.integration.test_sink import window
from tests.kafka_io import read_until

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000
MIN_MS = 60_000


def alert_config(bootstrap: str, topic_prefix: str, tmp_path: Path) -> PantauConfig:
    config = make_config(bootstrap, topic_prefix, tmp_path)
    rules: list[dict[str, Any]] = [
        {
            "id": "crowded",
            "metric": "people_density",
            "scope": "CAMERA",
            "comparison": ">",
            "threshold": 3.0,
            "for_s": 120,
            "hysteresis": 0.5,
            "min_frames": 1,
        },
        {"id": "offline", "metric": "camera_offline", "scope": "CAMERA", "for_s": 60},
    ]
    return config.model_copy(
        update={
            "alerting": config.alerting.model_validate({"rules": rules, "tick_s": 0.2})
        }
    )


def crowd(minute: int, people_per_frame: float) -> WindowAggregate:
    """A running camera window whose last frame is at ``minute``."""
    record = window("cam-1", T0, 1)
    record["frames"] = 10
    record["people_sum"] = round(10 * people_per_frame)
    record["last_captured_at_ms"] = T0 + minute * MIN_MS
    record["revision"] = minute + 1
    return record


def offline(at_ms: int, state: str) -> CameraStatus:
    return {
        "camera_id": "cam-2",
        "state": state,  # type: ignore[typeddict-item]
        "changed_at_ms": at_ms,
        "reason": "connection refused" if state == "OFFLINE" else None,
        "last_frame_at_ms": None,
    }


def produce(
    config: PantauConfig, bootstrap: str, spec: Any, records: list[Any]
) -> None:
    topic = topic_name(config.kafka, spec)
    codec = AvroCodec(topic, spec.record_type, LocalResolver())
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in records:
        key = record.get("scope_id", record.get("camera_id"))
        producer.produce(topic, key=str(key).encode(), value=codec.encode(record))
    assert producer.flush(10) == 0


def run_until(evaluator: AlertEvaluator, stop: threading.Event, done: Any) -> None:
    thread = threading.Thread(target=evaluator.run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not done():
            assert time.monotonic() < deadline, "evaluator did not get there"
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()


def test_alerts_fire_resolve_and_survive_a_replay(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = alert_config(bootstrap, topic_prefix, tmp_path)
    ensure_topics(config.kafka, bootstrap)
    alerts_topic = topic_name(config.kafka, ALERTS)
    # Crowded from minute 1, held 2 minutes at minute 3, inside the
    # hysteresis at minute 4, clear at minute 5.
    produce(
        config,
        bootstrap,
        WINDOWS,
        [
            crowd(0, 2),
            crowd(1, 4),
            crowd(2, 4),
            crowd(3, 5),
            crowd(4, 2.8),
            crowd(5, 2),
        ],
    )
    # cam-2 went offline a while ago and stays so: the clock fires it.
    now_ms = int(time.time() * 1000)
    produce(config, bootstrap, CAMERA_STATUS, [offline(now_ms - 3_600_000, "OFFLINE")])

    def alerts() -> list[dict[str, Any]]:
        return [
            record
            for _, record in read_until(
                bootstrap, alerts_topic, "alert", lambda got: len(got) >= 3, 5
            )
        ]

    stop = threading.Event()
    evaluator = build_alert_evaluator(config, bootstrap, stop)
    run_until(evaluator, stop, lambda: len(alerts()) >= 3)
    first = alerts()
    by_rule = {(a["rule_id"], a["state"]): a for a in first}
    assert sorted(by_rule) == [
        ("crowded", "FIRING"),
        ("crowded", "RESOLVED"),
        ("offline", "FIRING"),
    ]
    assert by_rule["crowded", "FIRING"]["fired_at_ms"] == T0 + 3 * MIN_MS
    assert by_rule["crowded", "RESOLVED"]["resolved_at_ms"] == T0 + 5 * MIN_MS
    assert by_rule["offline", "FIRING"]["scope_id"] == "cam-2"

    # A restarted evaluator that reads every window again (a new group: the
    # worst case of a crash before any commit) publishes nothing new...
    stop = threading.Event()
    replaying = build_alert_evaluator(config, bootstrap, stop)
    replaying._windows.close()
    replaying._windows = _fresh_group_consumer(config, bootstrap)
    back_ms = int(time.time() * 1000)
    produce(config, bootstrap, CAMERA_STATUS, [offline(back_ms, "ONLINE")])
    run_until(
        replaying,
        stop,
        lambda: replaying.published >= 1 and replaying.windows_read >= 6,
    )
    assert replaying.published == 1
    # ...but the camera coming back, which resolves the offline alert.
    final = read_until(bootstrap, alerts_topic, "alert", lambda got: len(got) >= 5, 5)
    assert [(r["rule_id"], r["state"]) for _, r in final[3:]] == [
        ("offline", "RESOLVED")
    ]
    assert final[3][1]["alert_id"] == by_rule["offline", "FIRING"]["alert_id"]


def _fresh_group_consumer(config: PantauConfig, bootstrap: str) -> Any:
    from pantau.kafka import make_consumer

    return make_consumer(
        config.kafka, bootstrap, f"{alerting.ALERTING_GROUP}-replay", "replay"
    )
