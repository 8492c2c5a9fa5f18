"""Versioned ClickHouse schema: migrations applied once each, in order.

Each migration is a file ``stream_apps/migrations/V<NNNN>__<name>.sql`` holding
one or more statements separated by ``;`` on a line end, with ``{database}``
standing for the configured database. Applied versions are recorded, with a
checksum of their text, in ``<database>.schema_migrations``; a migration whose
file changed after it was applied is refused, so the schema of a running
deployment only ever moves forward through new files.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Literal

from clickhouse_connect.driver.client import Client

log = logging.getLogger("pantau.stream_apps.migrations")

MIGRATIONS_TABLE = "schema_migrations"
_FILE_NAME = re.compile(r"^V(\d{4})__([a-z0-9_]+)\.sql$")

_TRACKING_DDL = f"""
CREATE TABLE IF NOT EXISTS {{database}}.{MIGRATIONS_TABLE}
(
    version UInt32,
    name String,
    checksum String COMMENT 'sha256 of the migration file when it was applied',
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version
COMMENT 'ClickHouse schema versions applied by pantau db migrate'
"""


class MigrationError(RuntimeError):
    """The schema cannot be brought up to date as it stands."""


@dataclass(frozen=True)
class Migration:
    """One versioned schema change."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def statements(self, database: str) -> list[str]:
        """The statements of the file, for ``database``."""
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.startswith("--")
        )
        return [
            part.strip().replace("{database}", database)
            for part in re.split(r";\s*$", body, flags=re.M)
            if part.strip()
        ]


@dataclass(frozen=True)
class MigrationState:
    """A migration and whether this database has it."""

    migration: Migration
    state: Literal["applied", "pending"]
    applied_at: datetime | None


def bundled_migrations() -> list[Migration]:
    """The migrations shipped with Pantau, oldest first."""
    found = []
    for entry in resources.files("stream_apps.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number: {versions}")
    return found


def status(
    client: Client, database: str, migrations: list[Migration] | None = None
) -> list[MigrationState]:
    """Every migration, applied or pending; refuses a changed applied file."""
    migrations = bundled_migrations() if migrations is None else migrations
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(_TRACKING_DDL.format(database=database))
    rows = client.query(
        f"SELECT version, checksum, applied_at FROM {database}.{MIGRATIONS_TABLE} "
        "FINAL ORDER BY version"
    ).result_rows
    applied = {int(version): (checksum, at) for version, checksum, at in rows}
    states = []
    for migration in migrations:
        record = applied.get(migration.version)
        if record is None:
            states.append(MigrationState(migration, "pending", None))
            continue
        checksum, applied_at = record
        if checksum != migration.checksum:
            raise MigrationError(
                f"migration V{migration.version:04d} {migration.name} changed after "
                f"it was applied to {database}: expected sha256 {checksum}, got "
                f"{migration.checksum}; restore the file and add a new migration"
            )
        states.append(MigrationState(migration, "applied", applied_at))
    return states


def migrate(
    client: Client, database: str, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Apply the pending migrations in order; returns those applied now."""
    applied_now = []
    for state in status(client, database, migrations):
        if state.state == "applied":
            continue
        migration = state.migration
        for statement in migration.statements(database):
            client.command(statement)
        client.insert(
            f"{database}.{MIGRATIONS_TABLE}",
            [
                [
                    migration.version,
                    migration.name,
                    migration.checksum,
                    datetime.now(UTC),
                ]
            ],
            column_names=["version", "name", "checksum", "applied_at"],
        )
        log.info(
            "migration applied database=%s version=%s name=%s",
            database,
            migration.version,
            migration.name,
        )
        applied_now.append(migration)
    return applied_now
