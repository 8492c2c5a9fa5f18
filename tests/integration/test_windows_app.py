"""The faust windows app against the real broker: event-time windows, duplicates
dropped, state recovered from the changelog after a restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from infra.kafka_broker import EmbeddedKafka
from pantau.kafka import topic_name
from schemas.codec import AvroCodec
from schemas.records import DetectionEvent
from schemas.registry import LocalResolver
from schemas.topics import DEAD_LETTER, DETECTIONS, LATE_EVENTS, WINDOWS
from tests.conftest import VTEST, make_config
from tests.kafka_io import Keyed, read_until
from tests.records import detection_event
from tests.windows_worker import start_worker, stop_worker

pytestmark = pytest.mark.integration

SIZE_MS = 900_000
T0 = 1_767_225_600_000


def latest_windows(
    bootstrap: str,
    topic: str,
    done: Callable[[dict[bytes, dict[str, Any]]], bool],
) -> tuple[dict[bytes, dict[str, Any]], list[dict[str, Any]]]:
    """Read the windows topic until ``done`` holds for the latest revision per
    key; returns that and every message read."""

    def latest_of(messages: list[Keyed]) -> dict[bytes, dict[str, Any]]:
        latest: dict[bytes, dict[str, Any]] = {}
        for key, record in messages:
            current = latest.get(key or b"")
            if current is None or record["revision"] > current["revision"]:
                latest[key or b""] = record
        return latest

    messages = read_until(
        bootstrap, topic, "window_aggregate", lambda got: done(latest_of(got)), 90
    )
    return latest_of(messages), [record for _, record in messages]


def frames_by_window(latest: dict[bytes, dict[str, Any]]) -> dict[int, int]:
    return {
        w["window_start_ms"]: w["frames"]
        for w in latest.values()
        if w["scope_level"] == "CAMERA" and w["window_kind"] == "TUMBLING"
    }


def test_windows_count_each_event_once_across_a_restart(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path / "state")
    config_path = tmp_path / "pantau.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "kafka": {
                    "bootstrap_servers": bootstrap,
                    "topic_prefix": topic_prefix,
                    "default_partitions": 2,
                },
                "clickhouse": {"url": "chdb:///nowhere"},
                "cameras": [
                    {
                        "id": "cam-1",
                        "source_url": str(VTEST),
                        "region": {
                            "city": "Jakarta",
                            "kecamatan": "Gambir",
                            "kelurahan": "Gambir",
                        },
                    }
                ],
            }
        )
    )
    detections_topic = topic_name(config.kafka, DETECTIONS)
    windows_topic = topic_name(config.kafka, WINDOWS)
    codec = AvroCodec(detections_topic, "detection_event", LocalResolver())
    producer = Producer({"bootstrap.servers": bootstrap})

    def send(*events: DetectionEvent) -> None:
        for event in events:
            producer.produce(detections_topic, key=b"cam-1", value=codec.encode(event))
        assert producer.flush(10) == 0

    window_a, window_b = T0, T0 + SIZE_MS
    # Lateness is judged per one-minute step: events out of order stay within
    # the grace period of their step to be counted.
    near_end_a = window_a + SIZE_MS - 60_000
    first = [
        detection_event("e1", window_a + 10, 2),
        detection_event("e2", window_a + 20, 3),
        detection_event("e4", window_b + 5, 1),  # out of order across windows
        detection_event("e3", near_end_a + 30, 4),
        detection_event("e2", window_a + 20, 3),  # redelivery
        detection_event("e5", window_b + 15, 6),
        detection_event("e6", window_b + 25, 0),
    ]
    log_path = tmp_path / "windows.log"
    worker = start_worker(config_path, log_path)
    try:
        # The worker creates the topics at start; wait until they exist.
        deadline = time.monotonic() + 60
        while detections_topic not in producer.list_topics(timeout=5).topics:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.5)
        send(*first)
        producer.produce(detections_topic, key=b"cam-1", value=b"\x00garbage")
        producer.flush(10)
        latest, _ = latest_windows(
            bootstrap,
            windows_topic,
            lambda got: frames_by_window(got) == {window_a: 3, window_b: 3},
        )
        assert frames_by_window(latest) == {window_a: 3, window_b: 3}, (
            log_path.read_text()
        )
        assert latest[f"CAMERA:cam-1:TUMBLING:{window_a}".encode()]["people_sum"] == 9
        assert latest[f"CAMERA:cam-1:TUMBLING:{window_b}".encode()]["people_max"] == 6
    finally:
        assert stop_worker(worker) == 0, log_path.read_text()

    send(
        detection_event("e7", near_end_a + 40, 5),
        detection_event("e2", window_a + 20, 3),
    )
    worker = start_worker(config_path, log_path)
    try:
        latest, every = latest_windows(
            bootstrap,
            windows_topic,
            lambda got: frames_by_window(got).get(window_a) == 4,
        )
    finally:
        assert stop_worker(worker) == 0, log_path.read_text()
    assert frames_by_window(latest) == {window_a: 4, window_b: 3}, log_path.read_text()
    assert latest[f"CAMERA:cam-1:TUMBLING:{window_a}".encode()]["people_sum"] == 14
    assert max(record["frames"] for record in every) == 4

    # Event time moves hours on: windows A and B close, a last message says so,
    # and an event that still arrives for A is routed to the late-events topic.
    worker = start_worker(config_path, log_path)
    try:
        send(detection_event("e8", T0 + 3 * 3_600_000, 1))
        latest, _ = latest_windows(
            bootstrap,
            windows_topic,
            lambda got: (
                sum(
                    w["is_final"]
                    for w in got.values()
                    if w["scope_level"] == "CAMERA" and w["window_kind"] == "TUMBLING"
                )
                >= 2
            ),
        )
        send(detection_event("e9", window_a + 50, 7))
        late = read_until(
            bootstrap,
            topic_name(config.kafka, LATE_EVENTS),
            "detection_event",
            lambda got: len(got) >= 1,
            30,
        )
    finally:
        assert stop_worker(worker) == 0, log_path.read_text()
    final_a = latest[f"CAMERA:cam-1:TUMBLING:{window_a}".encode()]
    assert final_a["is_final"]
    assert final_a["frames"] == 4
    assert final_a["revision"] == 5
    assert latest[f"CAMERA:cam-1:TUMBLING:{window_b}".encode()]["is_final"]
    assert [event["event_id"] for _, event in late] == ["e9"]

    [(_, dead)] = read_until(
        bootstrap,
        topic_name(config.kafka, DEAD_LETTER),
        "dead_letter",
        lambda got: len(got) >= 1,
        20,
    )
    assert dead["service"] == "windows"
    assert dead["error_type"] == "bad-schema"
    assert dead["original_value"] == b"\x00garbage"
