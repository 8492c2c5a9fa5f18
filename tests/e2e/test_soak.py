"""`pantau bench soak` for a minute and a half on real footage: the broker
restarted, inference, windows and sink workers killed, ClickHouse away for 20
s, and still every frame analysed and every tumbling window in ClickHouse
equal to the undisturbed result."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pantau.config import PantauConfig
from stream_apps.soak import bench_soak
from tests.conftest import CACHE_DIR, VTEST

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(900)
def test_soak_loses_nothing(tmp_path: Path) -> None:
    base = PantauConfig.model_validate({"cache_dir": str(CACHE_DIR)})
    report = bench_soak(base, minutes=1.5, cameras=2, interval_s=0.5, video=VTEST)
    print(report)
    assert report.count("    t=") == 5, report
    for fault in (
        "SIGKILL the inference worker",
        "restart the Kafka broker",
        "SIGKILL the windows worker",
        "SIGKILL the sink worker",
        "ClickHouse unavailable for 20 s",
    ):
        assert fault in report
    match = re.search(r"frames published\s+(\d+)", report)
    assert match and int(match[1]) >= 100, report
    assert re.search(r"frames without a detection event\s+0$", report, re.M), report
    assert "windows missing / extra / differing 0 / 0 / 0" in report, report
    assert "lost: nothing" in report, report
