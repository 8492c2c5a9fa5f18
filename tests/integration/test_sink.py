"""The ClickHouse sink against the real broker and the chDB ClickHouse server:
one row per window after FINAL, poison dead-lettered, nothing lost while
ClickHouse is down."""

from __future__ import annotations

import threading
import time
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from infra.clickhouse_server import EmbeddedClickHouse
from infra.embedded import Endpoints
from infra.kafka_broker import EmbeddedKafka
from infra.topics_admin import ensure_topics
from pantau.clickhouse import connect
from pantau.config import PantauConfig
from pantau.kafka import topic_name
from pantau.services import build_sink, prepare_clickhouse
from schemas.codec import AvroCodec
from schemas.records import Alert, CameraState, CameraStatus, WindowAggregate
from schemas.registry import LocalResolver
from schemas.topics import ALERTS, CAMERA_STATUS, DEAD_LETTER, DETECTIONS, WINDOWS
from stream_apps.sink import INSERT_FAILURES
from tests.conftest import make_config
from tests.kafka_io import read_until
from tests.records import detection_event

pytestmark = pytest.mark.integration

T0 = 1_767_225_600_000


def window(camera: str, start_ms: int, revision: int) -> WindowAggregate:
    return {
        "scope_level": "CAMERA",
        "scope_id": camera,
        "region": {"city": "Jakarta", "kecamatan": "Gambir", "kelurahan": "Gambir"},
        "window_kind": "TUMBLING",
        "window_start_ms": start_ms,
        "window_end_ms": start_ms + 900_000,
        "revision": revision,
        "is_final": False,
        "updated_at_ms": start_ms + revision,
        "frames": revision,
        "people_sum": 2 * revision,
        "people_max": 2,
        "vehicles_sum": {"car": revision},
        "faces_sum": 0,
        "masked_sum": 0,
        "unmasked_sum": 0,
        "violators_sum": 0,
        "uncalibrated_frames": revision,
        "first_captured_at_ms": start_ms,
        "last_captured_at_ms": start_ms + revision,
    }


def sink_config(
    bootstrap: str,
    topic_prefix: str,
    tmp_path: Path,
    clickhouse_url: str,
    database: str,
    **clickhouse: Any,
) -> PantauConfig:
    """A test configuration whose sink writes to its own database and flushes
    every 0.2 s."""
    config = make_config(bootstrap, topic_prefix, tmp_path, clickhouse_url)
    return config.model_copy(
        update={
            "clickhouse": config.clickhouse.model_copy(
                update={"database": database, **clickhouse}
            ),
            "pipeline": config.pipeline.model_copy(
                update={"sink_batch_interval_s": 0.2}
            ),
        }
    )


def wait_for(check: object, timeout_s: float = 60) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.3)


def test_sink_lands_latest_revision_and_survives_clickhouse_outage(
    kafka_broker: EmbeddedKafka,
    clickhouse_server: EmbeddedClickHouse,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    database = f"sink_{abs(hash(topic_prefix)) % 10**8}"
    config = sink_config(
        bootstrap, topic_prefix, tmp_path, clickhouse_server.url, database
    )
    endpoints = Endpoints(bootstrap, clickhouse_server.url)
    stop = threading.Event()
    ensure_topics(config.kafka, bootstrap)
    prepare_clickhouse(config, endpoints)
    sink = build_sink(config, endpoints, stop)
    windows_topic = topic_name(config.kafka, WINDOWS)
    codec = AvroCodec(windows_topic, "window_aggregate", LocalResolver())
    producer = Producer({"bootstrap.servers": bootstrap})
    for record in (
        window("cam-1", T0, 1),
        window("cam-1", T0, 2),
        window("cam-2", T0, 1),
        window("cam-1", T0, 2),  # redelivered revision
        window("cam-1", T0, 3),
    ):
        key = f"CAMERA:{record['scope_id']}:{T0}".encode()
        producer.produce(windows_topic, key=key, value=codec.encode(record))
    producer.produce(windows_topic, key=b"CAMERA:cam-1:0", value=b"\x00\x00\x00\x00")
    assert producer.flush(10) == 0

    def final_rows() -> list[tuple[str, int, int]]:
        client = connect(config.clickhouse, clickhouse_server.url)
        rows = client.query(
            f"SELECT scope_id, revision, frames FROM {database}.windows FINAL "
            "ORDER BY scope_id"
        ).result_rows
        return [tuple(row) for row in rows]

    thread = threading.Thread(target=sink.run)
    thread.start()
    try:
        wait_for(lambda: final_rows() == [("cam-1", 3, 3), ("cam-2", 1, 1)])

        failures_before = INSERT_FAILURES.labels("windows")._value.get()
        assert clickhouse_server.stop()
        producer.produce(
            windows_topic,
            key=f"CAMERA:cam-1:{T0}".encode(),
            value=codec.encode(window("cam-1", T0, 4)),
        )
        assert producer.flush(10) == 0
        wait_for(
            lambda: INSERT_FAILURES.labels("windows")._value.get() > failures_before
        )
        clickhouse_server.start()
        wait_for(lambda: final_rows() == [("cam-1", 4, 4), ("cam-2", 1, 1)])
    finally:
        stop.set()
        thread.join(60)
        if not clickhouse_server.is_running():
            clickhouse_server.start()
    assert not thread.is_alive()
    assert sink.rows_inserted >= 6

    dead = read_until(
        bootstrap,
        topic_name(config.kafka, DEAD_LETTER),
        "dead_letter",
        lambda got: len(got) >= 1,
    )
    assert [record["error_type"] for _, record in dead] == ["bad-schema"]
    assert dead[0][1]["service"] == "sink"


@pytest.fixture(params=["server", "in-process"])
def clickhouse_url(request: pytest.FixtureRequest) -> str:
    """The chDB HTTP server's URL, then in-process chDB's ``chdb:///`` URL."""
    if request.param == "server":
        server: EmbeddedClickHouse = request.getfixturevalue("clickhouse_server")
        return server.url
    url: str = request.getfixturevalue("chdb_in_process_url")
    return url


def test_detections_sink_lands_each_frame_once_with_its_boxes(
    kafka_broker: EmbeddedKafka,
    clickhouse_url: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """The same sink against the chDB HTTP server and in-process chDB."""
    bootstrap = kafka_broker.bootstrap_servers
    database = f"det_{abs(hash(topic_prefix)) % 10**8}"
    url = clickhouse_url
    # The events are from January: a retention would delete them.
    config = sink_config(
        bootstrap, topic_prefix, tmp_path, url, database, detections_ttl_days=None
    )
    stop = threading.Event()
    endpoints = Endpoints(bootstrap, url)
    ensure_topics(config.kafka, bootstrap)
    prepare_clickhouse(config, endpoints)
    sink = build_sink(config, endpoints, stop, "detections")
    topic = topic_name(config.kafka, DETECTIONS)
    codec = AvroCodec(topic, "detection_event", LocalResolver())
    boxed = detection_event("e2", T0 + 2_000, 1, vehicles={"car": 2})
    boxed["detections"] = [
        {
            "class_name": "person",
            "score": 0.75,
            "x_min": 0.1,
            "y_min": 0.2,
            "x_max": 0.3,
            "y_max": 0.9,
            "mask_state": "MASKED",
            "violation": True,
        }
    ]
    producer = Producer({"bootstrap.servers": bootstrap})
    for event in (detection_event("e1", T0 + 1_000, 3), boxed, boxed):
        producer.produce(topic, key=b"cam-1", value=codec.encode(event))
    assert producer.flush(10) == 0

    def rows() -> list[tuple[Any, ...]]:
        client = connect(config.clickhouse, url)
        return [
            tuple(row)
            for row in client.query(
                "SELECT event_id, people, vehicles, detections "
                f"FROM {database}.detections FINAL ORDER BY event_id"
            ).result_rows
        ]

    thread = threading.Thread(target=sink.run)
    thread.start()
    try:
        wait_for(lambda: len(rows()) == 2)
    finally:
        stop.set()
        thread.join(60)
    [first, second] = rows()
    assert first[:3] == ("e1", 3, {})
    assert second[:3] == ("e2", 1, {"car": 2})
    [box] = second[3]
    assert box["class_name"] == "person"
    assert box["mask_state"] == "MASKED"
    assert box["violation"] is True
    assert box["score"] == pytest.approx(0.75)
    assert box["y_max"] == pytest.approx(0.9)


def test_alerts_and_camera_status_sinks(
    kafka_broker: EmbeddedKafka,
    clickhouse_server: EmbeddedClickHouse,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """A resolved alert replaces its firing row; every camera state change is
    kept once; the camera dimension describes the configured camera."""
    bootstrap = kafka_broker.bootstrap_servers
    database = f"al_{abs(hash(topic_prefix)) % 10**8}"
    config = sink_config(
        bootstrap, topic_prefix, tmp_path, clickhouse_server.url, database
    )
    endpoints = Endpoints(bootstrap, clickhouse_server.url)
    ensure_topics(config.kafka, bootstrap)
    prepare_clickhouse(config, endpoints)
    stop = threading.Event()
    sinks = [
        build_sink(config, endpoints, stop, table)
        for table in ("alerts", "camera_status")
    ]

    firing: Alert = {
        "alert_id": "a-1",
        "rule_id": "low-compliance",
        "scope_level": "KECAMATAN",
        "scope_id": "Jakarta/Gambir",
        "state": "FIRING",
        "metric": "compliance_ratio",
        "value": 0.41,
        "threshold": 0.6,
        "fired_at_ms": T0,
        "resolved_at_ms": None,
        "message": "mask compliance 41% below 60%",
    }
    resolved: Alert = {
        **firing,
        "state": "RESOLVED",
        "value": 0.72,
        "resolved_at_ms": T0 + 600_000,
    }
    history: list[tuple[CameraState, int, str | None]] = [
        ("ONLINE", 0, None),
        ("OFFLINE", 60_000, "connection refused"),
        ("ONLINE", 120_000, None),
    ]
    statuses: list[CameraStatus] = [
        {
            "camera_id": "cam-1",
            "state": state,
            "changed_at_ms": T0 + offset_ms,
            "reason": reason,
            "last_frame_at_ms": None,
        }
        for state, offset_ms, reason in history
    ]
    producer = Producer({"bootstrap.servers": bootstrap})
    alerts_topic = topic_name(config.kafka, ALERTS)
    alert_codec = AvroCodec(alerts_topic, "alert", LocalResolver())
    for alert in (firing, firing, resolved):
        producer.produce(
            alerts_topic,
            key=b"low-compliance:KECAMATAN:Jakarta/Gambir",
            value=alert_codec.encode(alert),
        )
    status_topic = topic_name(config.kafka, CAMERA_STATUS)
    status_codec = AvroCodec(status_topic, "camera_status", LocalResolver())
    for record in [*statuses, statuses[1]]:
        producer.produce(status_topic, key=b"cam-1", value=status_codec.encode(record))
    assert producer.flush(10) == 0

    client = connect(config.clickhouse, clickhouse_server.url)

    def landed() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        alerts = client.query(
            f"SELECT alert_id, state, value, resolved_at FROM {database}.alerts FINAL"
        ).result_rows
        changes = client.query(
            f"SELECT state, reason FROM {database}.camera_status FINAL "
            "ORDER BY changed_at"
        ).result_rows
        return [tuple(r) for r in alerts], [tuple(r) for r in changes]

    threads = [threading.Thread(target=sink.run) for sink in sinks]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(landed()[0]) == 1 and len(landed()[1]) == 3)
        wait_for(lambda: landed()[0][0][1] == "RESOLVED")
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    alerts, changes = landed()
    [(alert_id, state, value, resolved_at)] = alerts
    assert (alert_id, state, value) == ("a-1", "RESOLVED", pytest.approx(0.72))
    assert resolved_at.replace(tzinfo=UTC).timestamp() * 1000 == T0 + 600_000
    assert changes == [
        ("ONLINE", None),
        ("OFFLINE", "connection refused"),
        ("ONLINE", None),
    ]
    cameras = client.query(
        f"SELECT camera_id, kecamatan, configured FROM {database}.cameras FINAL"
    ).result_rows
    assert [tuple(row) for row in cameras] == [("cam-1", "Gambir", True)]
