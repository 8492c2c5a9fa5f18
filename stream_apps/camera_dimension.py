"""The ``cameras`` dimension table: the configured cameras, written at start-up.

Each sync compares the configuration with the latest row per camera and inserts
only what changed: a new or edited camera gets a new row, a camera that left
the configuration gets a row with ``configured = false``. Several processes
syncing the same configuration at once insert equal rows, which collapse.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from pantau.config import CameraConfig

log = logging.getLogger("pantau.stream_apps.cameras")

CAMERAS_TABLE = "cameras"

# The columns that describe a camera; updated_at is only the version.
_DESCRIPTION = (
    "camera_id",
    "city",
    "kecamatan",
    "kelurahan",
    "source_kind",
    "sample_interval_s",
    "active_from",
    "active_until",
    "timezone",
    "calibrated",
    "configured",
)
_ARROW_SCHEMA = pa.schema(
    [
        ("camera_id", pa.string()),
        ("city", pa.string()),
        ("kecamatan", pa.string()),
        ("kelurahan", pa.string()),
        ("source_kind", pa.string()),
        ("sample_interval_s", pa.float64()),
        ("active_from", pa.string()),
        ("active_until", pa.string()),
        ("timezone", pa.string()),
        ("calibrated", pa.bool_()),
        ("configured", pa.bool_()),
        ("updated_at", pa.timestamp("ms", tz="UTC")),
    ]
)


def describe(camera: CameraConfig) -> tuple[Any, ...]:
    """The dimension row of a configured camera, without its version."""
    return (
        camera.id,
        camera.region.city,
        camera.region.kecamatan,
        camera.region.kelurahan,
        camera.source_kind,
        float(camera.sample_interval_s),
        camera.active_hours.start.isoformat(),
        camera.active_hours.end.isoformat(),
        camera.timezone,
        camera.ground_calibration is not None,
        True,
    )


def sync_cameras(
    client: Client,
    database: str,
    cameras: Sequence[CameraConfig],
    *,
    now: datetime | None = None,
) -> int:
    """Make the dimension describe ``cameras``; returns the rows inserted."""
    stored = {
        row[0]: tuple(row)
        for row in client.query(
            f"SELECT {', '.join(_DESCRIPTION)} FROM {database}.{CAMERAS_TABLE} FINAL"
        ).result_rows
    }
    wanted = {camera.id: describe(camera) for camera in cameras}
    changed = [row for camera_id, row in wanted.items() if stored.get(camera_id) != row]
    removed = [
        (*row[:-1], False)
        for camera_id, row in stored.items()
        if camera_id not in wanted and row[-1]
    ]
    rows = changed + removed
    if not rows:
        return 0
    updated_at = now or datetime.now(UTC)
    columns = {
        name: [row[index] for row in rows] for index, name in enumerate(_DESCRIPTION)
    }
    columns["updated_at"] = [updated_at] * len(rows)
    client.insert_arrow(
        CAMERAS_TABLE, pa.table(columns, schema=_ARROW_SCHEMA), database=database
    )
    log.info(
        "camera dimension updated database=%s changed=%s removed=%s",
        database,
        len(changed),
        len(removed),
    )
    return len(rows)
