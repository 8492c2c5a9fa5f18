"""The ClickHouse tables the stream apps land in, and the Arrow layout of their
rows."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from pantau.config import CameraConfig
from schemas.records import Alert, CameraStatus, DetectionEvent, WindowAggregate
from stream_apps.camera_dimension import sync_cameras
from stream_apps.clickhouse_migrations import migrate

log = logging.getLogger("pantau.stream_apps.tables")

WINDOWS_TABLE = "windows"
DETECTIONS_TABLE = "detections"
ALERTS_TABLE = "alerts"
CAMERA_STATUS_TABLE = "camera_status"

_TS = pa.timestamp("ms", tz="UTC")
WINDOWS_ARROW_SCHEMA = pa.schema(
    [
        ("scope_level", pa.string()),
        ("scope_id", pa.string()),
        ("window_kind", pa.string()),
        ("window_start", _TS),
        ("window_end", _TS),
        ("city", pa.string()),
        ("kecamatan", pa.string()),
        ("kelurahan", pa.string()),
        ("revision", pa.uint64()),
        ("is_final", pa.bool_()),
        ("updated_at", _TS),
        ("frames", pa.uint64()),
        ("people_sum", pa.uint64()),
        ("people_max", pa.uint32()),
        ("vehicles_sum", pa.map_(pa.string(), pa.uint64())),
        ("faces_sum", pa.uint64()),
        ("masked_sum", pa.uint64()),
        ("unmasked_sum", pa.uint64()),
        ("violators_sum", pa.uint64()),
        ("uncalibrated_frames", pa.uint64()),
        ("first_captured_at", _TS),
        ("last_captured_at", _TS),
    ]
)


def windows_arrow_table(rows: Sequence[WindowAggregate]) -> pa.Table:
    """One Arrow table (a single record batch) for an insert into ``windows``."""
    columns: dict[str, list[object]] = {name: [] for name in WINDOWS_ARROW_SCHEMA.names}
    for row in rows:
        region = row["region"]
        columns["scope_level"].append(row["scope_level"])
        columns["scope_id"].append(row["scope_id"])
        columns["window_kind"].append(row["window_kind"])
        columns["window_start"].append(row["window_start_ms"])
        columns["window_end"].append(row["window_end_ms"])
        columns["city"].append(region["city"])
        columns["kecamatan"].append(region["kecamatan"])
        columns["kelurahan"].append(region["kelurahan"])
        columns["revision"].append(row["revision"])
        columns["is_final"].append(row["is_final"])
        columns["updated_at"].append(row["updated_at_ms"])
        columns["frames"].append(row["frames"])
        columns["people_sum"].append(row["people_sum"])
        columns["people_max"].append(row["people_max"])
        columns["vehicles_sum"].append(list(row["vehicles_sum"].items()))
        columns["faces_sum"].append(row["faces_sum"])
        columns["masked_sum"].append(row["masked_sum"])
        columns["unmasked_sum"].append(row["unmasked_sum"])
        columns["violators_sum"].append(row["violators_sum"])
        columns["uncalibrated_frames"].append(row["uncalibrated_frames"])
        columns["first_captured_at"].append(row["first_captured_at_ms"])
        columns["last_captured_at"].append(row["last_captured_at_ms"])
    return pa.table(columns, schema=WINDOWS_ARROW_SCHEMA)


_DETECTION_BOX = pa.struct(
    [
        ("class_name", pa.string()),
        ("score", pa.float32()),
        ("x_min", pa.float32()),
        ("y_min", pa.float32()),
        ("x_max", pa.float32()),
        ("y_max", pa.float32()),
        ("mask_state", pa.string()),
        ("violation", pa.bool_()),
    ]
)
DETECTIONS_ARROW_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("camera_id", pa.string()),
        ("city", pa.string()),
        ("kecamatan", pa.string()),
        ("kelurahan", pa.string()),
        ("frame_seq", pa.uint64()),
        ("captured_at", _TS),
        ("processed_at", _TS),
        ("width_px", pa.uint32()),
        ("height_px", pa.uint32()),
        ("model_versions", pa.map_(pa.string(), pa.string())),
        ("calibrated", pa.bool_()),
        ("people", pa.uint32()),
        ("vehicles", pa.map_(pa.string(), pa.uint32())),
        ("faces", pa.uint32()),
        ("masked", pa.uint32()),
        ("unmasked", pa.uint32()),
        ("distancing_violators", pa.uint32()),
        ("detections", pa.list_(_DETECTION_BOX)),
    ]
)


def detections_arrow_table(rows: Sequence[DetectionEvent]) -> pa.Table:
    """One Arrow table (a single record batch) for an insert into
    ``detections``."""
    columns: dict[str, list[object]] = {
        name: [] for name in DETECTIONS_ARROW_SCHEMA.names
    }
    for row in rows:
        region, counts = row["region"], row["counts"]
        columns["event_id"].append(row["event_id"])
        columns["camera_id"].append(row["camera_id"])
        columns["city"].append(region["city"])
        columns["kecamatan"].append(region["kecamatan"])
        columns["kelurahan"].append(region["kelurahan"])
        columns["frame_seq"].append(row["frame_seq"])
        columns["captured_at"].append(row["captured_at_ms"])
        columns["processed_at"].append(row["processed_at_ms"])
        columns["width_px"].append(row["width_px"])
        columns["height_px"].append(row["height_px"])
        columns["model_versions"].append(list(row["model_versions"].items()))
        columns["calibrated"].append(row["calibrated"])
        columns["people"].append(counts["people"])
        columns["vehicles"].append(list(counts["vehicles"].items()))
        columns["faces"].append(counts["faces"])
        columns["masked"].append(counts["masked"])
        columns["unmasked"].append(counts["unmasked"])
        columns["distancing_violators"].append(counts["distancing_violators"])
        columns["detections"].append(row["detections"])
    return pa.table(columns, schema=DETECTIONS_ARROW_SCHEMA)


ALERTS_ARROW_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("rule_id", pa.string()),
        ("scope_level", pa.string()),
        ("scope_id", pa.string()),
        ("state", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("threshold", pa.float64()),
        ("fired_at", _TS),
        ("resolved_at", _TS),
        ("changed_at", _TS),
        ("message", pa.string()),
    ]
)


def alerts_arrow_table(rows: Sequence[Alert]) -> pa.Table:
    """One Arrow table for an insert into ``alerts``; ``changed_at``, the
    version that lets RESOLVED replace FIRING, is the latest of the two times."""
    columns: dict[str, list[object]] = {name: [] for name in ALERTS_ARROW_SCHEMA.names}
    for row in rows:
        columns["alert_id"].append(row["alert_id"])
        columns["rule_id"].append(row["rule_id"])
        columns["scope_level"].append(row["scope_level"])
        columns["scope_id"].append(row["scope_id"])
        columns["state"].append(row["state"])
        columns["metric"].append(row["metric"])
        columns["value"].append(row["value"])
        columns["threshold"].append(row["threshold"])
        columns["fired_at"].append(row["fired_at_ms"])
        columns["resolved_at"].append(row["resolved_at_ms"])
        columns["changed_at"].append(
            max(row["fired_at_ms"], row["resolved_at_ms"] or row["fired_at_ms"])
        )
        columns["message"].append(row["message"])
    return pa.table(columns, schema=ALERTS_ARROW_SCHEMA)


CAMERA_STATUS_ARROW_SCHEMA = pa.schema(
    [
        ("camera_id", pa.string()),
        ("state", pa.string()),
        ("changed_at", _TS),
        ("reason", pa.string()),
        ("last_frame_at", _TS),
    ]
)


def camera_status_arrow_table(rows: Sequence[CameraStatus]) -> pa.Table:
    """One Arrow table for an insert into ``camera_status``."""
    return pa.table(
        {
            "camera_id": [row["camera_id"] for row in rows],
            "state": [row["state"] for row in rows],
            "changed_at": [row["changed_at_ms"] for row in rows],
            "reason": [row["reason"] for row in rows],
            "last_frame_at": [row["last_frame_at_ms"] for row in rows],
        },
        schema=CAMERA_STATUS_ARROW_SCHEMA,
    )


def ensure_tables(
    client: Client,
    database: str,
    detections_ttl_days: int | None = None,
    cameras: Sequence[CameraConfig] | None = None,
) -> None:
    """Bring the database's schema up to date (``pantau db migrate``), set the
    detections retention and, given the configured cameras, the camera
    dimension; safe to repeat."""
    migrate(client, database)
    apply_retention(client, database, detections_ttl_days)
    if cameras is not None:
        sync_cameras(client, database, cameras)


def apply_retention(client: Client, database: str, ttl_days: int | None) -> None:
    """Make the detections table keep rows ``ttl_days`` days after capture (or
    for ever); changes the table only when its TTL differs."""
    engine = str(
        client.command(
            "SELECT engine_full FROM system.tables "
            "WHERE database = {database:String} AND name = {table:String}",
            parameters={"database": database, "table": DETECTIONS_TABLE},
        )
    )
    wanted = (
        None
        if ttl_days is None
        else f"TTL toDateTime(captured_at) + toIntervalDay({ttl_days})"
    )
    has_ttl = " TTL " in f" {engine} "
    if wanted is None and not has_ttl:
        return
    if wanted is not None and wanted in engine:
        return
    if wanted is None:
        client.command(f"ALTER TABLE {database}.{DETECTIONS_TABLE} REMOVE TTL")
    else:
        client.command(
            f"ALTER TABLE {database}.{DETECTIONS_TABLE} MODIFY "
            f"TTL toDateTime(captured_at) + INTERVAL {int(ttl_days or 0)} DAY"
        )
    log.info("detections retention set database=%s ttl_days=%s", database, ttl_days)
