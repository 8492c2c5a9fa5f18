"""The monitoring page in Debian's headless Chromium against the running
embedded pipeline on real footage: the camera wall shows annotated frames, the
charts have points from real windows, an alert is listed, the page updates
itself, and a screenshot is written to test-artifacts/web-page.png."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.ports import free_port, free_port_pair
from tests.conftest import CACHE_DIR, REPO_ROOT, VTEST

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium")


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return None


def frame_served(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return bool(response.status == 200 and response.read(2) == b"\xff\xd8")
    except (urllib.error.URLError, OSError):
        return False


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1400,1900",
            "--virtual-time-budget=20000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def attribute(dom: str, element_id: str, name: str) -> int:
    match = re.search(rf'id="{element_id}"[^>]*\b{name}="(\d+)"', dom) or re.search(
        rf'\b{name}="(\d+)"[^>]*id="{element_id}"', dom
    )
    assert match, f"no {name} on #{element_id} in the page"
    return int(match.group(1))


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")
def test_page_shows_frames_charts_and_alerts_from_the_pipeline(
    tmp_path: Path,
) -> None:
    web_port = free_port()
    config = tmp_path / "pantau.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(tmp_path / "state"),
                "cache_dir": str(CACHE_DIR),
                "kafka": {"default_partitions": 2},
                "pipeline": {"publish_annotated": True},
                "web": {"port": web_port, "refresh_s": 1},
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
                        "loop": True,
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
        str(free_port(exclude={kafka_port, kafka_port + 1, web_port})),
    ]
    base = [sys.executable, "-m", "pantau.cli", "--config", str(config)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    infra = subprocess.run(
        [*base, "infra", "up", *ports], capture_output=True, text=True, check=False
    )
    assert infra.returncode == 0, infra.stderr
    log_path = tmp_path / "up.log"
    page = f"http://127.0.0.1:{web_port}"
    with log_path.open("w") as log:
        up = subprocess.Popen(
            [*base, "up", "--duration", "900", "--progress-interval", "5", *ports],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert up.poll() is None, log_path.read_text()[-4000:]
            assert time.monotonic() < deadline, (
                "the page never had frames, windows with violators and an alert:\n"
                + log_path.read_text()[-4000:]
            )
            mobility = get_json(f"{page}/api/mobility") or {}
            alerts = get_json(f"{page}/api/alerts") or {}
            regions = get_json(f"{page}/api/regions") or {}
            if (
                mobility.get("rows")
                and alerts.get("rows")
                and any(row["violators"] for row in regions.get("rows", []))
                and frame_served(f"{page}/frames/monas-01.jpg")
            ):
                break
            time.sleep(2)

        dom_run = chromium("--dump-dom", page + "/")
        assert dom_run.returncode == 0, dom_run.stderr[-2000:]
        dom = dom_run.stdout
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "web-page.png"
        screenshot.unlink(missing_ok=True)
        shot = chromium(f"--screenshot={screenshot}", page + "/")
        assert shot.returncode == 0, shot.stderr[-2000:]
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(180)
        finally:
            if up.poll() is None:
                up.kill()
            subprocess.run([*base, "infra", "down"], capture_output=True, check=False)

    assert up.returncode == 0, log_path.read_text()[-4000:]
    assert "monitoring page: http://127.0.0.1:" in log_path.read_text()
    # The wall shows the camera with a loaded annotated frame and its state.
    assert attribute(dom, "wall", "data-cameras") == 1
    assert re.search(r'id="camera-monas-01"[^>]*data-frame="loaded"', dom) or (
        re.search(r'data-frame="loaded"[^>]*id="camera-monas-01"', dom)
    ), "the camera's frame did not load"
    assert "ONLINE" in dom
    # Charts drew points from the pipeline's windows.
    for chart in ("mobility-box", "density-box", "violations-box"):
        assert attribute(dom, chart, "data-points") > 0, chart
        assert attribute(dom, chart, "data-nonzero") > 0, chart
    # The alert is listed, and the page refreshed itself more than once.
    assert attribute(dom, "alerts", "data-rows") >= 1
    assert "people-seen" in dom
    refreshes = re.search(r'data-refreshes="(\d+)"', dom)
    assert refreshes and int(refreshes.group(1)) >= 2
    assert screenshot.stat().st_size > 20_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
