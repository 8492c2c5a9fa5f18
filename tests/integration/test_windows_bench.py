"""`pantau bench windows` runs end to end on a small stream and reports every
figure it promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.kafka_broker import EmbeddedKafka
from pantau.config_loader import load_config
from stream_apps.bench import bench_windows
from tests.window_streams import REGIONS
from tests.windows_worker import write_config

pytestmark = pytest.mark.integration


def test_bench_windows_reports_worker_and_bare_consumer_rates(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config_path = write_config(
        tmp_path / "pantau.yaml", bootstrap, topic_prefix, REGIONS
    )
    report = bench_windows(
        load_config(config_path),
        ["--config", str(config_path)],
        bootstrap,
        events=4000,
        cameras=50,
    )

    figures = dict(
        (label.strip(), float(value))
        for label, value in re.findall(
            r"^  (.+?)\s+([\d.]+)(?: events/s)?$", report, re.M
        )
    )
    assert set(figures) == {
        "bare aiokafka consumer (read only)",
        "window logic alone (decode + stages)",
        "windows worker, detections committed",
        "windows worker, regions caught up",
        "ratio worker / bare consumer",
    }, report
    assert all(value > 0 for value in figures.values()), report
