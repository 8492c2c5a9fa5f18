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
