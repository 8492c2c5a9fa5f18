"""The Grafana dashboard and provisioning in infra/grafana: well formed, every
panel on the provisioned data source, and every panel query run on ClickHouse
(in-process chDB) with Grafana's macros expanded, for the whole city and for
one kecamatan, each giving rows from known windows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pantau.clickhouse import connect
from pantau.config import ClickHouseConfig
from schemas.records import Alert, CameraStatus
from stream_apps.camera_dimension import sync_cameras
from stream_apps.clickhouse_migrations import migrate
from stream_apps.clickhouse_tables import (
    alerts_arrow_table,
    camera_status_arrow_table,
    windows_arrow_table,
)
from tests.conftest import REPO_ROOT, make_config
from tests.integration.test_web import region_window

pytestmark = pytest.mark.integration

GRAFANA = REPO_ROOT / "infra" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "pantau.json"
FROM = datetime(2026, 1, 8, 0, 0, tzinfo=UTC)
TO = datetime(2026, 1, 9, 0, 0, tzinfo=UTC)
T_DAY = int(datetime(2026, 1, 8, 3, 0, tzinfo=UTC).timestamp() * 1000)
WEEK_MS = 7 * 86_400_000


def expand(sql: str, kecamatan: str) -> str:
    """Grafana's macros and variable as the ClickHouse plugin expands them."""

    def at(moment: datetime) -> str:
        return f"toDateTime64('{moment:%Y-%m-%d %H:%M:%S}', 3, 'UTC')"

    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m.group(1)} >= {at(FROM)} AND {m.group(1)} <= {at(TO)}",
        sql,
    )
    sql = sql.replace("$__fromTime", at(FROM)).replace("$__toTime", at(TO))
    sql = sql.replace("${kecamatan:sqlstring}", f"'{kecamatan}'")
    assert "$" not in sql, f"an unexpanded macro is left in:\n{sql}"
    return sql


def test_provisioning_points_at_the_dashboard_and_data_source() -> None:
    sources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text()
    )
    [source] = sources["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "pantau.yaml").read_text()
    )
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "pantau-city"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == source["uid"]
            assert target["rawSql"].strip()
    variable = dashboard["templating"]["list"][0]
    assert variable["datasource"]["uid"] == source["uid"]


def test_every_panel_query_runs_and_finds_the_windows(
    chdb_in_process_url: str, tmp_path: Path
) -> None:
    client = connect(ClickHouseConfig(), chdb_in_process_url)
    migrate(client, "pantau")
    config = make_config("127.0.0.1:9", "g.", tmp_path)
    sync_cameras(client, "pantau", config.cameras)
    windows = []
    for start in (T_DAY - WEEK_MS, T_DAY):
        for level, scope in (
            ("CITY", "Jakarta"),
            ("KECAMATAN", "Jakarta/Gambir"),
            ("KELURAHAN", "Jakarta/Gambir/Gambir"),
        ):
            windows.append(
                region_window(
                    level,
                    scope,
                    start,
                    frames=10,
                    people_sum=40,
                    vehicles_sum={"car": 5},
                    masked_sum=3,
                    unmasked_sum=1,
                    violators_sum=2,
                )
            )
    client.insert_arrow("pantau.windows", windows_arrow_table(windows))
    status: CameraStatus = {
        "camera_id": "cam-1",
        "state": "OFFLINE",
        "changed_at_ms": T_DAY,
        "reason": "connection refused",
        "last_frame_at_ms": None,
    }
    client.insert_arrow("pantau.camera_status", camera_status_arrow_table([status]))
    alert: Alert = {
        "alert_id": "g1",
        "rule_id": "offline",
        "scope_level": "CAMERA",
        "scope_id": "cam-1",
        "state": "FIRING",
        "metric": "camera_offline",
        "value": 1.0,
        "threshold": 1.0,
        "fired_at_ms": T_DAY,
        "resolved_at_ms": None,
        "message": "camera offline",
    }
    client.insert_arrow("pantau.alerts", alerts_arrow_table([alert]))

    dashboard = json.loads(DASHBOARD.read_text())
    variable = dashboard["templating"]["list"][0]["query"]
    assert client.query(variable).result_rows == [("Gambir",)]
    results: dict[str, Any] = {}
    for kecamatan in ("All", "Gambir"):
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                rows = client.query(expand(target["rawSql"], kecamatan)).result_rows
                assert rows, f"{panel['title']} ({target['refId']}, {kecamatan})"
                results[f"{panel['id']}{target['refId']}-{kecamatan}"] = rows
    # Today's point and last week's, shifted onto today, line up.
    [(today, vehicles)] = results["1A-All"]
    [(shifted, last_week)] = results["1B-All"]
    assert today == shifted and vehicles == last_week == 0.5
    assert results["3A-All"] == [("Gambir", 0.75)]
    assert results["4A-Gambir"] == [("Gambir", 2, 0.05)]
    assert results["6A-All"][0][3] == "OFFLINE"
