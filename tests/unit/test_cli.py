"""The command line: configuration checks, output formats, external engines."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infra import embedded
from pantau.cli import EXAMPLE_CONFIG, main
from pantau.config import PantauConfig
from pantau.table_output import format_json_lines, format_table, format_tsv


def test_config_check_reports_lines_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "kafka:\n  bootstrap_server: x:9092\npipeline:\n  jpeg_quality: 500\n"
    )
    assert main(["config", "check", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:2: kafka.bootstrap_server" in out
    assert f"{path}:4: pipeline.jpeg_quality" in out


def test_config_init_writes_a_valid_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "pantau.yaml"
    assert main(["config", "init", str(target)]) == 0
    assert target.read_text() == EXAMPLE_CONFIG.read_text()
    assert main(["config", "check", str(target)]) == 0
    assert main(["config", "init", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_workers_explain_how_to_start_missing_engines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pantau.yaml"
    path.write_text(f"state_dir: {tmp_path / 'state'}\n")
    assert main(["--config", str(path), "sql", "SELECT 1"]) == 2
    assert "pantau infra up" in capsys.readouterr().err


def test_external_engines_are_never_started(tmp_path: Path) -> None:
    config = PantauConfig.model_validate(
        {
            "state_dir": tmp_path,
            "kafka": {"bootstrap_servers": "kafka-1.city.internal:9093"},
            "clickhouse": {"url": "https://clickhouse.city.internal:8443"},
        }
    )
    result = embedded.up(config)
    assert result.started == []
    assert result.external == ["kafka", "clickhouse"]
    assert embedded.resolve_endpoints(config) == embedded.Endpoints(
        "kafka-1.city.internal:9093", "https://clickhouse.city.internal:8443"
    )
    assert embedded.down(config) == []
    assert not (tmp_path / "kafka").exists()


ROWS = [("jkt-001", datetime(2026, 1, 1, tzinfo=UTC), 2.5, None)]
COLUMNS = ["camera", "window_start", "people_avg", "note"]


def test_table_output_formats() -> None:
    table = format_table(COLUMNS, ROWS)
    assert table.splitlines()[0].split() == COLUMNS
    assert "jkt-001  2026-01-01 00:00:00+00:00  2.5" in table
    assert table.endswith("(1 row)")
    assert format_tsv(COLUMNS, ROWS).splitlines()[1].split("\t")[3] == "NULL"
    assert '"people_avg": 2.5' in format_json_lines(COLUMNS, ROWS)


def test_detect_runs_the_consumer_analysis_on_a_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = "/usr/share/doc/opencv-doc/examples/data/vtest.avi"
    code = main(
        ["detect", video, "--every", "300", "--json", "--annotate", str(tmp_path)]
    )
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["input"] for e in events] == [
        "vtest.avi#0",
        "vtest.avi#300",
        "vtest.avi#600",
    ]
    assert all(e["counts"]["people"] >= 1 for e in events)
    for event in events:
        people = [d for d in event["detections"] if d["class_name"] == "person"]
        assert event["counts"]["people"] == len(people)
        vehicles = len(event["detections"]) - len(people)
        assert sum(event["counts"]["vehicles"].values()) == vehicles
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "vtest.avi_0.jpg",
        "vtest.avi_300.jpg",
        "vtest.avi_600.jpg",
    ]


def test_detect_refuses_what_is_not_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("not a picture")
    assert main(["detect", str(bogus)]) == 2
    assert "not a readable image" in capsys.readouterr().err


def test_calibrate_checks_and_draws_the_ground_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cal.png"
    code = main(
        ["--config", str(EXAMPLE_CONFIG), "calibrate", "demo-vtest", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "calibrated ground area 108.0 m2" in printed
    assert "cm per pixel" in printed
    assert out.stat().st_size > 10_000

    config = tmp_path / "pantau.yaml"
    config.write_text(
        EXAMPLE_CONFIG.read_text().replace(
            "image_wh: [768, 576]", "image_wh: [1920, 1080]"
        )
    )
    assert (
        main(["--config", str(config), "calibrate", "demo-vtest", "--out", str(out)])
        == 1
    )
    assert "another aspect ratio" in capsys.readouterr().out


def test_sql_lists_named_queries_and_checks_their_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sql", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "mobility-curve --kecamatan VALUE --date VALUE" in listing
    assert "compliance-ranking --week-start VALUE" in listing

    assert main(["sql", "mobility-curve", "--kecamatan", "Gambir"]) == 2
    assert "needs --date" in capsys.readouterr().err
    assert main(["sql", "SELECT 1", "--date", "2026-01-08"]) == 2
    assert "values are taken only by named queries" in capsys.readouterr().err
    assert main(["sql", "SELECT 1", "--format", "xml"]) == 2
    assert "expected table, tsv or json, got 'xml'" in capsys.readouterr().err


def test_analytics_doc_shows_every_named_query() -> None:
    from stream_apps.analytics import QUERIES

    doc = (Path(__file__).parents[2] / "docs" / "analytics.md").read_text()
    for query in QUERIES:
        assert f"## `{query.name}`" in doc
        assert query.sql.strip() in doc, f"docs/analytics.md: {query.name} differs"
