"""Versioned ClickHouse migrations against the ClickHouse HTTP server (chDB)."""

from __future__ import annotations

import uuid

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from infra.clickhouse_server import EmbeddedClickHouse
from stream_apps.clickhouse_migrations import (
    Migration,
    MigrationError,
    bundled_migrations,
    migrate,
    status,
)
from stream_apps.clickhouse_tables import ensure_tables

pytestmark = pytest.mark.integration

FIRST = Migration(
    1,
    "things",
    "-- a table and a view in one file\n"
    "CREATE TABLE IF NOT EXISTS {database}.things (id UInt32) "
    "ENGINE = MergeTree ORDER BY id;\n"
    "CREATE VIEW IF NOT EXISTS {database}.thing_count AS "
    "SELECT count() AS n FROM {database}.things;\n",
)
SECOND = Migration(
    2, "more", "ALTER TABLE {database}.things ADD COLUMN IF NOT EXISTS name String\n"
)


@pytest.fixture
def client(clickhouse_server: EmbeddedClickHouse) -> Client:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=clickhouse_server.http_port
    )


def test_migrations_apply_once_in_order_and_report_status(client: Client) -> None:
    database = f"m_{uuid.uuid4().hex[:8]}"
    assert [s.state for s in status(client, database, [FIRST, SECOND])] == [
        "pending",
        "pending",
    ]
    assert migrate(client, database, [FIRST]) == [FIRST]
    assert migrate(client, database, [FIRST, SECOND]) == [SECOND]
    assert migrate(client, database, [FIRST, SECOND]) == []
    states = status(client, database, [FIRST, SECOND])
    assert [(s.migration.version, s.state) for s in states] == [
        (1, "applied"),
        (2, "applied"),
    ]
    assert all(s.applied_at is not None for s in states)
    client.command(f"INSERT INTO {database}.things VALUES (1, 'a'), (2, 'b')")
    assert client.command(f"SELECT n FROM {database}.thing_count") == 2


def test_a_changed_applied_migration_is_refused(client: Client) -> None:
    database = f"m_{uuid.uuid4().hex[:8]}"
    migrate(client, database, [FIRST])
    edited = Migration(1, "things", FIRST.sql + "-- edited\n")
    with pytest.raises(MigrationError, match="V0001 things changed after it was"):
        migrate(client, database, [edited, SECOND])


def test_bundled_migrations_create_the_windows_table(client: Client) -> None:
    database = f"m_{uuid.uuid4().hex[:8]}"
    applied = migrate(client, database)
    assert [m.version for m in applied] == [m.version for m in bundled_migrations()]
    assert applied[0].name == "windows"
    assert client.command(f"EXISTS TABLE {database}.windows") == 1
    assert migrate(client, database) == []


def test_detections_retention_follows_the_configuration(client: Client) -> None:
    database = f"m_{uuid.uuid4().hex[:8]}"

    def engine() -> str:
        return str(
            client.command(
                "SELECT engine_full FROM system.tables "
                f"WHERE database = '{database}' AND name = 'detections'"
            )
        )

    ensure_tables(client, database, 30)
    assert "toIntervalDay(30)" in engine()
    ensure_tables(client, database, 30)  # unchanged: nothing to alter
    ensure_tables(client, database, 7)
    assert "toIntervalDay(7)" in engine()
    ensure_tables(client, database, None)
    assert " TTL " not in engine()
