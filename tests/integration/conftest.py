"""Fixtures for the integration tier: engines on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.clickhouse_server import EmbeddedClickHouse
from infra.ports import free_port


@pytest.fixture(scope="session")
def clickhouse_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmbeddedClickHouse]:
    """A ClickHouse HTTP server (chDB) shared by the whole test session.

    Tests share its `default` database: give every table a unique name.
    """
    server = EmbeddedClickHouse(
        tmp_path_factory.mktemp("clickhouse-state"), http_port=free_port()
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def chdb_in_process_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A ``chdb:///`` URL for in-process chDB in this test process.

    chDB allows one engine, on one path, per process: every test that uses
    in-process chDB shares this one; give each its own database.
    """
    return f"chdb://{tmp_path_factory.mktemp('chdb-in-process')}"
