"""The monitoring page's server against the chDB ClickHouse server and the real
broker: the page and its chart library, every JSON endpoint on known rows, and
a camera's latest annotated frame from Kafka."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import cv2
import pytest
from confluent_kafka import Producer

from infra.clickhouse_server import EmbeddedClickHouse
from infra.kafka_broker import EmbeddedKafka
from infra.ports import free_port
from infra.topics_admin import ensure_topics
from infra.web_assets import fetch_chartjs
from pantau.clickhouse import connect
from pantau.config import PantauConfig
from pantau.kafka import make_consumer, topic_name
from pantau.web.frames import LatestFrames
from pantau.web.server import PageServer, serve
from schemas.codec import AvroCodec
from schemas.records import Alert, CameraStatus, Frame
from schemas.registry import LocalResolver
from schemas.topics import ANNOTATED_FRAMES
from stream_apps.camera_dimension import sync_cameras
from stream_apps.clickhouse_migrations import migrate
from stream_apps.clickhouse_tables import (
    alerts_arrow_table,
    camera_status_arrow_table,
    windows_arrow_table,
)
from tests.conftest import CACHE_DIR, VTEST, make_config
from tests.integration.test_sink import window

pytestmark = pytest.mark.integration

DAY = "2026-01-08"
T_DAY = int(datetime(2026, 1, 8, 3, 0, tzinfo=UTC).timestamp() * 1000)  # 10:00 WIB
WEEK_MS = 7 * 86_400_000


def region_window(level: str, scope_id: str, start_ms: int, **sums: Any) -> Any:
    record = window(scope_id, start_ms, 1)
    record["scope_level"] = level  # type: ignore[typeddict-item]
    record["region"] = {
        "city": "Jakarta",
        "kecamatan": "Gambir" if level != "CITY" else "",
        "kelurahan": "Gambir" if level == "KELURAHAN" else "",
    }
    record.update(sums)  # type: ignore[typeddict-item]
    return record


class Page:
    """A running page server and a way to GET from it."""

    def __init__(self, url: str, config: PantauConfig) -> None:
        self.url = url
        self.config = config

    def get(self, path: str) -> tuple[int, bytes, dict[str, str]]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)
        except urllib.error.URLError:
            return 0, b"", {}  # not listening yet

    def rows(self, path: str) -> list[dict[str, Any]]:
        status, body, _ = self.get(path)
        assert status == 200, body
        rows: list[dict[str, Any]] = json.loads(body)["rows"]
        return rows


@pytest.fixture(scope="module")
def page(
    kafka_broker: EmbeddedKafka,
    clickhouse_server: EmbeddedClickHouse,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Page]:
    tmp = tmp_path_factory.mktemp("web")
    prefix = f"web-{uuid.uuid4().hex[:6]}."
    config = make_config(
        kafka_broker.bootstrap_servers, prefix, tmp, clickhouse_server.url
    )
    database = f"web_{uuid.uuid4().hex[:8]}"
    config = config.model_copy(
        update={
            "clickhouse": config.clickhouse.model_copy(update={"database": database})
        }
    )
    client = connect(config.clickhouse, clickhouse_server.url)
    migrate(client, database)
    sync_cameras(client, database, config.cameras)
    windows = []
    for week_ms, people in ((0, 30), (WEEK_MS, 60)):  # last week, then today
        start = T_DAY - WEEK_MS + week_ms
        windows += [
            region_window(
                "CITY",
                "Jakarta",
                start,
                frames=10,
                people_sum=people,
                vehicles_sum={"car": people // 3},
            ),
            region_window(
                "KECAMATAN",
                "Jakarta/Gambir",
                start,
                frames=10,
                people_sum=people,
                masked_sum=6,
                unmasked_sum=2,
                violators_sum=5,
            ),
        ]
    client.insert_arrow(f"{database}.windows", windows_arrow_table(windows))
    status: CameraStatus = {
        "camera_id": "cam-1",
        "state": "ONLINE",
        "changed_at_ms": T_DAY,
        "reason": None,
        "last_frame_at_ms": None,
    }
    client.insert_arrow(
        f"{database}.camera_status", camera_status_arrow_table([status])
    )
    firing: Alert = {
        "alert_id": "a1",
        "rule_id": "crowded",
        "scope_level": "CAMERA",
        "scope_id": "cam-1",
        "state": "FIRING",
        "metric": "people_density",
        "value": 6.0,
        "threshold": 5.0,
        "fired_at_ms": T_DAY,
        "resolved_at_ms": None,
        "message": "crowded",
    }
    client.insert_arrow(f"{database}.alerts", alerts_arrow_table([firing]))

    # One annotated frame of the demo footage on the topic.
    ensure_topics(config.kafka, kafka_broker.bootstrap_servers)
    topic = topic_name(config.kafka, ANNOTATED_FRAMES)
    codec = AvroCodec(topic, "frame", LocalResolver())
    capture = cv2.VideoCapture(str(VTEST))
    ok, image = capture.read()
    capture.release()
    assert ok
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    frame: Frame = {
        "camera_id": "cam-1",
        "frame_seq": 1,
        "captured_at_ms": T_DAY,
        "published_at_ms": T_DAY,
        "width_px": image.shape[1],
        "height_px": image.shape[0],
        "content_type": "image/jpeg",
        "image": jpeg,
    }
    producer = Producer({"bootstrap.servers": kafka_broker.bootstrap_servers})
    producer.produce(topic, key=b"cam-1", value=codec.encode(frame))
    assert producer.flush(10) == 0

    stop = threading.Event()
    frames = LatestFrames(
        make_consumer(config.kafka, kafka_broker.bootstrap_servers, "web-test", "t"),
        codec,
        stop,
    )
    frames.start()
    server = PageServer(
        connect=lambda: connect(config.clickhouse, clickhouse_server.url),
        database=database,
        frames=frames,
        chartjs=fetch_chartjs(CACHE_DIR),
        refresh_s=5,
    )
    port = free_port()
    thread = threading.Thread(
        target=asyncio.run, args=(serve(server, "127.0.0.1", port, stop),)
    )
    thread.start()
    page = Page(f"http://127.0.0.1:{port}", config)
    deadline = time.monotonic() + 30
    while page.get("/frames/cam-1.jpg")[0] != 200:
        assert time.monotonic() < deadline, "the page server never showed the frame"
        time.sleep(0.2)
    try:
        yield page
    finally:
        stop.set()
        thread.join(30)
        frames.join(30)


def test_page_and_chart_library_are_served_locally(page: Page) -> None:
    status, body, headers = page.get("/")
    assert status == 200 and b'<canvas id="mobility">' in body
    assert "text/html" in headers["Content-Type"]
    status, body, _ = page.get("/vendor/chart.umd.min.js")
    assert status == 200 and b"Chart.js v4.6.1" in body[:200]
    assert page.get("/static/app.js")[0] == 200
    assert page.get("/static/..%2Fserver.py")[0] == 404


def test_endpoints_return_the_rows_of_the_day(page: Page) -> None:
    mobility = page.rows(f"/api/mobility?date={DAY}")
    assert mobility == [
        {
            "slot_local": "10:00",
            "vehicles_avg": 2.0,
            "vehicles_avg_last_week": 1.0,
            "people_avg": 6.0,
            "people_avg_last_week": 3.0,
        }
    ]
    assert page.rows(f"/api/mobility?date={DAY}&kecamatan=Gambir")[0][
        "people_avg"
    ] == pytest.approx(6.0)
    [gambir] = page.rows(f"/api/regions?date={DAY}")
    assert gambir["region"] == "Gambir"
    assert gambir["compliance_ratio"] == pytest.approx(0.75)
    assert gambir["violators"] == 5
    [camera] = page.rows("/api/cameras")
    assert (camera["camera_id"], camera["state"]) == ("cam-1", "ONLINE")
    [alert] = page.rows("/api/alerts")
    assert (alert["rule_id"], alert["fired_at"]) == ("crowded", T_DAY)
    assert page.rows("/api/kecamatan") == [{"kecamatan": "Gambir"}]
    status, body, _ = page.get("/api/mobility?date=yesterday")
    assert status == 400 and b"expected YYYY-MM-DD, got 'yesterday'" in body


def test_latest_annotated_frame_of_a_camera(page: Page) -> None:
    status, body, headers = page.get("/frames/cam-1.jpg")
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert body[:2] == b"\xff\xd8"
    assert headers["X-Captured-At-Ms"] == str(T_DAY)
    assert page.get("/frames/nobody.jpg")[0] == 404
