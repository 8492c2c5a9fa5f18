"""The named analytics queries and the rollups on windows made by the window
stages from two days of detection events, checked against sums computed from
the events; camera uptime on a generated history of camera states."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from infra.clickhouse_server import EmbeddedClickHouse
from pantau.config import CameraConfig
from schemas.records import CameraState, CameraStatus, DetectionEvent
from stream_apps.analytics import QueryArgumentError, named_query
from stream_apps.camera_dimension import sync_cameras
from stream_apps.clickhouse_migrations import migrate
from stream_apps.clickhouse_tables import (
    camera_status_arrow_table,
    windows_arrow_table,
)
from tests.unit.test_window_state import Pipeline
from tests.window_streams import MINUTE_MS, REGIONS, T0, make_event

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
WIB = timezone(timedelta(hours=7))
WIB_NAME = "Asia/Jakarta"
LAST_WEEK = date(2026, 1, 1)  # T0 is 07:00 WIB that day
TODAY = date(2026, 1, 8)


def day_events(rng: random.Random, start_ms: int, prefix: str) -> list[DetectionEvent]:
    """An hour of events from every camera, in capture order."""
    events = []
    for index, offset_ms in enumerate(range(0, 60 * MINUTE_MS, 20_000)):
        camera = sorted(REGIONS)[index % len(REGIONS)]
        events.append(
            make_event(f"{prefix}-{index}", camera, start_ms + offset_ms, rng)
        )
    return events


@pytest.fixture(scope="module")
def loaded(
    clickhouse_server: EmbeddedClickHouse,
) -> Iterator[tuple[Client, str, list[DetectionEvent]]]:
    rng = random.Random(7)
    events = day_events(rng, T0, "w0") + day_events(rng, T0 + 7 * DAY_MS, "w1")
    flush = [
        make_event(f"flush-{camera}", camera, T0 + 9 * DAY_MS, rng)
        for camera in sorted(REGIONS)
    ]
    pipeline = Pipeline(2, rng)
    for event in events + flush:
        pipeline.feed(event)
    pipeline.drain_all()
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=clickhouse_server.http_port
    )
    database = f"a_{uuid.uuid4().hex[:8]}"
    migrate(client, database)
    # Every revision, in a few batches, and one batch twice: a sink redelivery.
    revisions = list(pipeline.published)
    batches = [revisions[index::3] for index in range(3)]
    for batch in [*batches, batches[1]]:
        client.insert_arrow(f"{database}.windows", windows_arrow_table(batch))
    yield client, database, events


def run(client: Client, database: str, name: str, **flags: str) -> list[dict[str, Any]]:
    query = named_query(name)
    assert query is not None
    result = client.query(query.render(database), parameters=query.bind(flags))
    return [
        dict(zip(result.column_names, row, strict=True)) for row in result.result_rows
    ]


def local_day(event: DetectionEvent) -> date:
    return datetime.fromtimestamp(event["captured_at_ms"] / 1000, WIB).date()


def in_kecamatan(event: DetectionEvent, kecamatan: str) -> bool:
    return event["region"]["kecamatan"] == kecamatan


def test_mobility_curve_of_a_kecamatan_day(
    loaded: tuple[Client, str, list[DetectionEvent]],
) -> None:
    client, database, events = loaded
    rows = run(
        client, database, "mobility-curve", kecamatan="Gambir", date="2026-01-08"
    )

    windows: dict[int, list[DetectionEvent]] = defaultdict(list)
    for event in events:
        if in_kecamatan(event, "Gambir") and local_day(event) == TODAY:
            start = event["captured_at_ms"] - event["captured_at_ms"] % (15 * MINUTE_MS)
            windows[start].append(event)
    assert len(rows) == len(windows) == 4
    for row, start in zip(rows, sorted(windows), strict=True):
        members = windows[start]
        assert row["window_start_local"].timestamp() * 1000 == start
        assert row["frames"] == len(members)
        vehicles = sum(sum(e["counts"]["vehicles"].values()) for e in members)
        assert row["vehicles_avg"] == pytest.approx(vehicles / len(members), abs=1e-3)
        people = sum(e["counts"]["people"] for e in members)
        assert row["people_avg"] == pytest.approx(people / len(members), abs=1e-3)


def test_compliance_ranking_of_kelurahan_for_a_week(
    loaded: tuple[Client, str, list[DetectionEvent]],
) -> None:
    client, database, events = loaded
    rows = run(client, database, "compliance-ranking", **{"week-start": "2026-01-01"})

    sums: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for event in events:
        if local_day(event) < TODAY:  # the week from 2026-01-01 ends before it
            sums[event["region"]["kelurahan"]][0] += event["counts"]["masked"]
            sums[event["region"]["kelurahan"]][1] += event["counts"]["unmasked"]
    expected = sorted(sums, key=lambda k: sums[k][0] / sum(sums[k]))
    assert [row["kelurahan"] for row in rows] == expected
    for row in rows:
        masked, unmasked = sums[row["kelurahan"]]
        assert (row["masked"], row["unmasked"]) == (masked, unmasked)
        assert row["compliance_ratio"] == pytest.approx(
            masked / (masked + unmasked), abs=1e-3
        )


def test_distancing_hotspots_rank_cameras_and_hours(
    loaded: tuple[Client, str, list[DetectionEvent]],
) -> None:
    client, database, events = loaded
    rows = run(
        client,
        database,
        "distancing-hotspots",
        **{"from-date": "2026-01-01", "to-date": "2026-01-08", "limit": "4"},
    )

    violators: dict[tuple[str, int], int] = defaultdict(int)
    for event in events:
        hour = datetime.fromtimestamp(event["captured_at_ms"] / 1000, WIB).hour
        violators[(event["camera_id"], hour)] += event["counts"]["distancing_violators"]
    expected = sorted(
        (key for key, count in violators.items() if count),
        key=lambda key: (-violators[key], key),
    )[:4]
    assert [(row["camera_id"], row["hour_local"]) for row in rows] == expected
    assert [row["violators"] for row in rows] == [violators[key] for key in expected]


def test_density_against_the_same_weekday_last_week(
    loaded: tuple[Client, str, list[DetectionEvent]],
) -> None:
    client, database, events = loaded
    rows = run(
        client, database, "density-vs-last-week", kecamatan="Menteng", date="2026-01-08"
    )

    slots: dict[tuple[date, str], list[int]] = defaultdict(list)
    for event in events:
        if in_kecamatan(event, "Menteng"):
            start_ms = event["captured_at_ms"] - event["captured_at_ms"] % (
                15 * MINUTE_MS
            )
            slot = datetime.fromtimestamp(start_ms / 1000, WIB).strftime("%H:%M")
            slots[(local_day(event), slot)].append(event["counts"]["people"])
    assert [row["slot_local"] for row in rows] == ["07:00", "07:15", "07:30", "07:45"]
    for row in rows:
        today = slots[(TODAY, row["slot_local"])]
        last_week = slots[(LAST_WEEK, row["slot_local"])]
        assert row["people_avg"] == pytest.approx(sum(today) / len(today), abs=1e-3)
        assert row["people_avg_last_week"] == pytest.approx(
            sum(last_week) / len(last_week), abs=1e-3
        )


def test_named_query_values_are_checked() -> None:
    query = named_query("mobility-curve")
    assert query is not None
    with pytest.raises(QueryArgumentError, match="needs --date"):
        query.bind({"kecamatan": "Gambir"})
    with pytest.raises(QueryArgumentError, match="expected a date as YYYY-MM-DD"):
        query.bind({"kecamatan": "Gambir", "date": "08/01/2026"})
    with pytest.raises(QueryArgumentError, match="unknown --city"):
        query.bind({"kecamatan": "Gambir", "date": "2026-01-08", "city": "x"})
    with pytest.raises(QueryArgumentError, match="plain identifier"):
        query.render("pantau; DROP TABLE x")


def test_rollups_count_each_window_once_despite_revisions_and_redelivery(
    loaded: tuple[Client, str, list[DetectionEvent]],
) -> None:
    client, database, events = loaded
    hourly = {
        (row[0], row[1], row[2].replace(tzinfo=UTC)): row[3:]
        for row in client.query(
            "SELECT scope_level, scope_id, hour_start, windows, frames, people_sum, "
            "masked_sum, violators_sum, people_max, vehicles_sum "
            f"FROM {database}.windows_hourly_totals"
        ).result_rows
    }
    expected: dict[tuple[str, str, datetime], list[Any]] = {}
    for event in events:
        hour = datetime.fromtimestamp(event["captured_at_ms"] // 3_600_000 * 3600, UTC)
        region = event["region"]
        counts = event["counts"]
        for level, scope_id in (
            ("CAMERA", event["camera_id"]),
            ("KECAMATAN", f"{region['city']}/{region['kecamatan']}"),
            ("CITY", region["city"]),
        ):
            row = expected.setdefault(
                (level, scope_id, hour), [set(), 0, 0, 0, 0, 0, defaultdict(int)]
            )
            row[0].add(event["captured_at_ms"] // (15 * MINUTE_MS))
            row[1] += 1
            row[2] += counts["people"]
            row[3] += counts["masked"]
            row[4] += counts["distancing_violators"]
            row[5] = max(row[5], counts["people"])
            for vehicle_class, count in counts["vehicles"].items():
                row[6][vehicle_class] += count
    assert expected
    for key, (
        quarters,
        frames,
        people,
        masked,
        violators,
        most,
        vehicles,
    ) in expected.items():
        assert hourly[key] == (
            len(quarters),
            frames,
            people,
            masked,
            violators,
            most,
            {name: count for name, count in vehicles.items() if count},
        ), key

    # The daily rollup agrees with the windows themselves, read with FINAL.
    daily = client.query(
        "SELECT scope_level, scope_id, day, frames, people_sum, unmasked_sum "
        f"FROM {database}.windows_daily_totals ORDER BY scope_level, scope_id, day"
    ).result_rows
    from_windows = client.query(
        f"SELECT scope_level, scope_id, toDate(window_start, '{WIB_NAME}') AS day, "
        "sum(frames), sum(people_sum), sum(unmasked_sum) "
        f"FROM {database}.windows FINAL WHERE window_kind = 'TUMBLING' "
        "GROUP BY scope_level, scope_id, day ORDER BY scope_level, scope_id, day"
    ).result_rows
    assert daily == from_windows
    assert len(daily) > 10


def status(camera: str, state: CameraState, at_ms: int) -> CameraStatus:
    return {
        "camera_id": camera,
        "state": state,
        "changed_at_ms": at_ms,
        "reason": None,
        "last_frame_at_ms": None,
    }


def test_camera_uptime_from_state_changes(
    clickhouse_server: EmbeddedClickHouse,
) -> None:
    client = clickhouse_connect.get_client(
        host="127.0.0.1", port=clickhouse_server.http_port
    )
    database = f"u_{uuid.uuid4().hex[:8]}"
    migrate(client, database)
    cameras = [
        CameraConfig.model_validate(
            {
                "id": camera,
                "source_url": "/footage.mp4",
                "region": {"city": "Jakarta", "kecamatan": kecamatan, "kelurahan": "X"},
            }
        )
        for camera, kecamatan in (
            ("cam-a", "Gambir"),
            ("cam-b", "Menteng"),
            ("cam-silent", "Menteng"),
        )
    ]
    sync_cameras(client, database, cameras)
    day_ms = int(datetime(2026, 1, 5, tzinfo=WIB).timestamp() * 1000)
    hour_ms = 3_600_000
    history = [
        # cam-a: online from the day before, offline 06:00-09:00, frozen for
        # 30 minutes, inactive from 22:00.
        status("cam-a", "ONLINE", day_ms - 5 * hour_ms),
        status("cam-a", "OFFLINE", day_ms + 6 * hour_ms),
        status("cam-a", "RECONNECTING", day_ms + 8 * hour_ms),
        status("cam-a", "ONLINE", day_ms + 9 * hour_ms),
        status("cam-a", "FROZEN", day_ms + 12 * hour_ms),
        status("cam-a", "ONLINE", day_ms + 12 * hour_ms + hour_ms // 2),
        status("cam-a", "INACTIVE", day_ms + 22 * hour_ms),
        # cam-b: first seen at 12:00 and online since; a change the next day
        # lies outside the period.
        status("cam-b", "ONLINE", day_ms + 12 * hour_ms),
        status("cam-b", "OFFLINE", day_ms + 30 * hour_ms),
    ]
    # Delivered twice, as after a sink restart.
    client.insert_arrow(
        f"{database}.camera_status", camera_status_arrow_table(history + history[:4])
    )
    rows = {
        row["camera_id"]: row
        for row in run(
            client,
            database,
            "camera-uptime",
            **{"from-date": "2026-01-05", "to-date": "2026-01-05"},
        )
    }
    assert list(rows) == ["cam-silent", "cam-a", "cam-b"]
    assert rows["cam-a"]["online_hours"] == pytest.approx(6 + 3 + 9.5)
    assert rows["cam-a"]["monitored_hours"] == pytest.approx(22)
    assert rows["cam-a"]["uptime_ratio"] == pytest.approx(18.5 / 22, abs=1e-3)
    assert rows["cam-a"]["outages"] == 2
    assert rows["cam-b"]["uptime_ratio"] == pytest.approx(1.0)
    assert rows["cam-b"]["monitored_hours"] == pytest.approx(12)
    assert rows["cam-silent"]["uptime_ratio"] is None
    assert rows["cam-silent"]["kecamatan"] == "Menteng"
