"""`pantau bench sink` runs end to end on a small stream and reports every
figure it promises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.kafka_broker import EmbeddedKafka
from stream_apps.sink_bench import bench_sink
from tests.conftest import make_config

pytestmark = pytest.mark.integration


def test_bench_sink_reports_sink_and_bare_insert_rates(
    kafka_broker: EmbeddedKafka,
    chdb_in_process_url: str,
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path, chdb_in_process_url)
    config = config.model_copy(
        update={
            "pipeline": config.pipeline.model_copy(
                update={"sink_batch_rows": 1000, "sink_batch_interval_s": 0.2}
            )
        }
    )
    report = bench_sink(config, bootstrap, chdb_in_process_url, rows=6000, cameras=40)

    assert report.startswith("sink benchmark: 6000 detection events")
    figures = {
        label.strip(): float(value)
        for label, value in re.findall(
            r"^  (.+?)\s+([\d.]+)(?: rows/s)?$", report, re.M
        )
    }
    assert set(figures) == {
        "bare Arrow insert, one insert",
        "bare Arrow insert,   1000-row batches",
        "detections sink, topic to table",
        "ratio sink / bare one insert",
        "ratio sink / bare batched",
    }
    assert all(value > 0 for value in figures.values())
    sink = figures["detections sink, topic to table"]
    single = figures["bare Arrow insert, one insert"]
    assert figures["ratio sink / bare one insert"] == pytest.approx(
        sink / single, rel=0.01, abs=0.001
    )
