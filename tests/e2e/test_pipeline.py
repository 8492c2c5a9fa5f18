"""The whole pipeline on real footage, driven through the ``pantau`` command:
engines, sampler, inference, windows and sink, read back with ``pantau sql``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.ports import free_port, free_port_pair
from tests.conftest import CACHE_DIR, VTEST

pytestmark = pytest.mark.e2e

FRAMES = 12


def pantau(
    config: Path, *args: str, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pantau.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


def test_up_lands_every_frame_once_in_clickhouse(tmp_path: Path) -> None:
    config = tmp_path / "pantau.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "cache_dir": str(CACHE_DIR),
                "kafka": {"default_partitions": 2},
                "alerting": {
                    "rules": [
                        {
                            "id": "people-seen",
                            "metric": "people_density",
                            "scope": "CAMERA",
                            "comparison": ">",
                            "threshold": 0.5,
                            "min_frames": 1,
                        }
                    ]
                },
                "cameras": [
                    {
                        "id": "monas-01",
                        "source_url": str(VTEST),
                        "region": {
                            "city": "Jakarta",
                            "kecamatan": "Gambir",
                            "kelurahan": "Gambir",
                        },
                        "sample_interval_s": 0.25,
                    }
                ],
            }
        )
    )
    kafka_port = free_port_pair()
    ports = [
        "--kafka-port",
        str(kafka_port),
        "--clickhouse-port",
        str(free_port(exclude={kafka_port, kafka_port + 1})),
    ]
    infra = pantau(config, "infra", "up", *ports)
    assert infra.returncode == 0, infra.stderr
    try:
        run = pantau(
            config,
            "up",
            "--max-frames",
            str(FRAMES),
            "--progress-interval",
            "2",
            *ports,
        )
        assert run.returncode == 0, run.stderr[-4000:]
        assert "pipeline stopped:" in run.stdout
        assert "frames=" in run.stdout

        query = pantau(
            config,
            "sql",
            "SELECT scope_id, kecamatan, frames, revision, people_sum, people_max, "
            "window_end - window_start AS size_s, "
            "toUnixTimestamp64Milli(first_captured_at) AS first_ms, "
            "toUnixTimestamp64Milli(window_start) AS start_ms "
            "FROM pantau.windows FINAL "
            "WHERE scope_level = 'CAMERA' AND window_kind = 'TUMBLING' "
            "ORDER BY window_start",
            "--format",
            "json",
        )
        assert query.returncode == 0, query.stderr
        rows = [json.loads(line) for line in query.stdout.splitlines()]

        total = pantau(config, "sql", "SELECT count() AS n FROM pantau.windows")
        assert total.returncode == 0, total.stderr
        levels = pantau(
            config,
            "sql",
            "SELECT scope_level, scope_id, sum(frames) AS frames "
            "FROM pantau.windows FINAL WHERE window_kind = 'TUMBLING' "
            "GROUP BY scope_level, scope_id ORDER BY scope_level",
            "--format",
            "json",
        )
        assert levels.returncode == 0, levels.stderr
        landed = pantau(
            config,
            "sql",
            "SELECT "
            "(SELECT count() FROM pantau.detections FINAL) AS detections, "
            "(SELECT sum(frames) FROM pantau.windows_daily_totals "
            "WHERE scope_level = 'CAMERA') AS daily_frames, "
            "(SELECT sum(frames) FROM pantau.windows_hourly_totals "
            "WHERE scope_level = 'CAMERA') AS hourly_frames, "
            "(SELECT groupUniqArray(state) FROM pantau.camera_status FINAL "
            "WHERE camera_id = 'monas-01') AS states, "
            "(SELECT count() FROM pantau.cameras FINAL WHERE configured) AS cameras, "
            "(SELECT groupUniqArray((rule_id, scope_id, state)) "
            "FROM pantau.alerts FINAL) AS alerts",
            "--format",
            "json",
        )
        assert landed.returncode == 0, landed.stderr
    finally:
        down = pantau(config, "infra", "down")
        assert down.returncode == 0, down.stderr
        assert "stopped=clickhouse,kafka" in down.stdout

    assert rows, "no window reached ClickHouse"
    assert sum(row["frames"] for row in rows) == FRAMES  # none lost, none twice
    # Every frame's event, the rollups of the camera windows, the camera's
    # health and the camera dimension landed too.
    tables = json.loads(landed.stdout)
    assert tables["detections"] == FRAMES
    assert tables["daily_frames"] == tables["hourly_frames"] == FRAMES
    assert "ONLINE" in tables["states"]
    assert tables["cameras"] == 1
    # The alert rule fired on the camera's first window and landed too.
    assert tables["alerts"] == [["people-seen", "monas-01", "FIRING"]]
    # Region windows follow each detections partition's share, forwarded at
    # every minute of event time and every window_heartbeat_s: a short run
    # shows part of its frames there.
    by_level = {
        row["scope_level"]: row
        for row in (json.loads(line) for line in levels.stdout.splitlines())
    }
    assert by_level.keys() == {"CAMERA", "KELURAHAN", "KECAMATAN", "CITY"}
    assert by_level["KECAMATAN"]["scope_id"] == "Jakarta/Gambir"
    assert all(1 <= row["frames"] <= FRAMES for row in by_level.values())
    for row in rows:
        assert row["scope_id"] == "monas-01"
        assert row["kecamatan"] == "Gambir"
        assert row["revision"] == row["frames"]
        assert float(row["size_s"]) == 900
        assert row["start_ms"] <= row["first_ms"] < row["start_ms"] + 900_000
        # HOG finds 1 to 5 of the 3 to 7 people in each vtest.avi frame.
        assert row["frames"] <= row["people_sum"] <= 6 * row["frames"]
        assert 1 <= row["people_max"] <= 8
