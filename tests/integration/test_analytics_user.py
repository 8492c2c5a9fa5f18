"""The read-only analytics user, on a ClickHouse server (chDB) that takes it
from a users.d file as a real server does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from infra.clickhouse_server import EmbeddedClickHouse
from infra.ports import free_port
from pantau.cli import main
from pantau.config import CameraConfig
from stream_apps.analytics import named_query
from stream_apps.camera_dimension import sync_cameras
from stream_apps.clickhouse_migrations import migrate

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
DATABASE = "pantau"


def write_config(
    path: Path, url: str, user: str = "default", password: str = ""
) -> Path:
    path.write_text(
        f"clickhouse:\n  url: {url}\n  user: {user}\n  password: '{password}'\n"
        f"  database: {DATABASE}\n"
    )
    return path


@pytest.fixture(scope="module")
def server_with_analyst(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmbeddedClickHouse]:
    state = tmp_path_factory.mktemp("analyst-server")
    server = EmbeddedClickHouse(state, http_port=free_port())
    config = write_config(state / "pantau.yaml", server.url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANALYST_PASSWORD", PASSWORD)
        users_xml = _run_cli(
            [
                "--config",
                str(config),
                "db",
                "analytics-user",
                "--name",
                "analyst",
                "--password-env",
                "ANALYST_PASSWORD",
                "--network",
                "127.0.0.1",
            ]
        )
    assert PASSWORD not in users_xml
    users_d = server.run_dir / "users.d"
    users_d.mkdir(parents=True)
    (users_d / "pantau-analyst.xml").write_text(users_xml)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _run_cli(argv: list[str]) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


def client_as(server: EmbeddedClickHouse, user: str, password: str = "") -> Client:
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=server.http_port, username=user, password=password
    )


def test_analyst_reads_pantau_tables_and_nothing_else(
    server_with_analyst: EmbeddedClickHouse,
) -> None:
    admin = client_as(server_with_analyst, "default")
    migrate(admin, DATABASE)
    other = f"o_{uuid.uuid4().hex[:8]}"
    admin.command(f"CREATE DATABASE {other}")
    admin.command(f"CREATE TABLE {other}.secrets (x UInt8) ENGINE = Memory")

    analyst = client_as(server_with_analyst, "analyst", PASSWORD)
    query = named_query("mobility-curve")
    assert query is not None
    result = analyst.query(
        query.render(DATABASE),
        parameters=query.bind({"kecamatan": "Gambir", "date": "2026-01-08"}),
    )
    assert result.result_rows == []
    assert analyst.query(f"SELECT count() FROM {DATABASE}.cameras").result_rows == [
        (0,)
    ]
    for statement in (
        f"INSERT INTO {DATABASE}.cameras (camera_id) VALUES ('x')",
        f"DROP TABLE {DATABASE}.windows",
        f"ALTER TABLE {DATABASE}.detections DELETE WHERE 1",
        f"SELECT * FROM {other}.secrets",
    ):
        with pytest.raises(DatabaseError, match=r"ACCESS_DENIED|READONLY|privileges"):
            analyst.command(statement)
    with pytest.raises(DatabaseError, match="AUTHENTICATION_FAILED"):
        client_as(server_with_analyst, "analyst", "wrong password!")


def test_pantau_sql_runs_named_queries_as_the_analyst(
    server_with_analyst: EmbeddedClickHouse,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    admin = client_as(server_with_analyst, "default")
    migrate(admin, DATABASE)
    camera = CameraConfig.model_validate(
        {
            "id": "cam-1",
            "source_url": "/footage.mp4",
            "region": {"city": "Jakarta", "kecamatan": "Gambir", "kelurahan": "X"},
        }
    )
    sync_cameras(admin, DATABASE, [camera])
    config = write_config(
        tmp_path / "analyst.yaml", server_with_analyst.url, "analyst", PASSWORD
    )
    argv = ["--config", str(config), "sql", "camera-uptime"]
    assert main([*argv, "--from-date", "2026-01-01", "--to-date", "2026-01-07"]) == 0
    listing = capsys.readouterr().out
    assert "uptime_ratio" in listing
    assert "cam-1" in listing


def test_sql_form_of_the_user_parses(
    clickhouse_server: EmbeddedClickHouse, tmp_path: Path
) -> None:
    """The SQL form cannot be run on chDB (it keeps no SQL-defined users), so
    ClickHouse's own parser checks it."""
    config = write_config(tmp_path / "pantau.yaml", clickhouse_server.url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PANTAU_ANALYTICS_PASSWORD", PASSWORD)
        sql = _run_cli(
            ["--config", str(config), "db", "analytics-user", "--format", "sql"]
        )
    statements = [part.strip() for part in sql.split(";") if part.strip()]
    assert len(statements) == 3
    admin = client_as(clickhouse_server, "default")
    for statement in statements:
        ast = admin.command(f"EXPLAIN AST {statement}")
        assert ast
    assert PASSWORD not in sql
