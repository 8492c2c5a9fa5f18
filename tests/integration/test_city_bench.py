"""`pantau bench city` on a small city: every frame offered reaches the
ClickHouse windows, and every figure it promises is reported."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.kafka_broker import EmbeddedKafka
from stream_apps.city_bench import bench_city
from tests.conftest import VTEST, make_config

pytestmark = pytest.mark.integration


def figure(pattern: str, report: str) -> str:
    match = re.search(pattern, report, re.M)
    assert match, f"no {pattern!r} in the report:\n{report}"
    return match[1]


def test_bench_city_reports_rates_lag_and_latency(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    config = make_config(kafka_broker.bootstrap_servers, topic_prefix, tmp_path)
    report = bench_city(
        config,
        kafka_broker.bootstrap_servers,
        cameras=30,
        interval_s=1.0,
        duration_s=20,
        warmup_s=5,
        inference_workers=1,
        windows_workers=1,
        video=VTEST,
        partitions=2,
    )
    assert report.startswith("city benchmark: 30 cameras every 1 s for 20 s")
    published = int(figure(r"\((\d+) published, 0 failed\)", report))
    counted = int(figure(r"\((\d+) in all after draining\)", report))
    assert published >= 500
    assert counted == published  # nothing lost, nothing counted twice
    ratio = float(figure(r"ratio counted / offered\s+([\d.]+)", report))
    assert 0.8 <= ratio <= 1.2
    p50, p95, p99 = (
        float(figure(rf"capture to window row, {p}\s+([\d.]+) s", report))
        for p in ("p50", "p95", "p99")
    )
    assert 0 <= p50 <= p95 <= p99 < 30
    assert figure(r"not in ClickHouse when the run ended \d+ / (\d+)$", report) == "0"
    assert re.search(r"^\s+t_s\s+inference\s+windows\s+sink$", report, re.M)
