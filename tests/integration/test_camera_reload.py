"""Cameras added to and removed from the configuration file while a
`pantau producers run` process keeps running: the new camera starts, the
removed one stops, and the camera left alone is not restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.kafka_broker import EmbeddedKafka
from infra.topics_admin import ensure_topics
from pantau.config_loader import load_config
from pantau.kafka import topic_name
from schemas.topics import FRAMES
from tests.conftest import VTEST
from tests.kafka_io import read_topic

pytestmark = pytest.mark.integration


def camera(camera_id: str) -> dict[str, Any]:
    return {
        "id": camera_id,
        "source_url": str(VTEST),
        "loop": True,
        "region": {"city": "Jakarta", "kecamatan": "Gambir", "kelurahan": "Gambir"},
        "sample_interval_s": 0.2,
    }


def write(path: Path, bootstrap: str, prefix: str, cameras: list[str]) -> None:
    text = yaml.safe_dump(
        {
            "state_dir": str(path.parent / "state"),
            "config_poll_s": 0.5,
            "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": prefix},
            "clickhouse": {"url": "chdb:///nowhere"},
            "cameras": [camera(camera_id) for camera_id in cameras],
        }
    )
    # Write then rename, as a deployment tool would: never a half-written file.
    staging = path.with_suffix(".tmp")
    staging.write_text(text)
    staging.replace(path)


def frames_by_camera(bootstrap: str, topic: str) -> dict[str, list[int]]:
    seqs: dict[str, list[int]] = {}
    for record in read_topic(bootstrap, topic, "frame"):
        seqs.setdefault(record["camera_id"], []).append(record["frame_seq"])
    return seqs


def wait_until(check: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_cameras_follow_the_configuration_file(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    path = tmp_path / "pantau.yaml"
    write(path, bootstrap, topic_prefix, ["cam-a"])
    config = load_config(path)
    ensure_topics(config.kafka, bootstrap)
    topic = topic_name(config.kafka, FRAMES)
    process = subprocess.Popen(
        [sys.executable, "-m", "pantau.cli", "--config", str(path), "producers", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_until(
            lambda: len(frames_by_camera(bootstrap, topic).get("cam-a", [])) >= 5,
            "cam-a never published",
        )
        write(path, bootstrap, topic_prefix, ["cam-a", "cam-b"])
        wait_until(
            lambda: len(frames_by_camera(bootstrap, topic).get("cam-b", [])) >= 5,
            "cam-b, added to the file, never published",
        )
        write(path, bootstrap, topic_prefix, ["cam-b"])
        time.sleep(3)  # the change is seen within 0.5 s; the sampler stops
        stopped = len(frames_by_camera(bootstrap, topic)["cam-a"])
        before_b = len(frames_by_camera(bootstrap, topic)["cam-b"])
        time.sleep(3)
        after = frames_by_camera(bootstrap, topic)
        assert len(after["cam-a"]) == stopped, "cam-a went on after its removal"
        assert len(after["cam-b"]) > before_b, "cam-b stopped with cam-a"
        # cam-a was never restarted while cam-b came: one unbroken sequence.
        seqs = after["cam-a"]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert seqs[-1] - seqs[0] == len(seqs) - 1
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    text = output.decode()
    assert process.returncode == 0, text[-3000:]
    assert "configuration reloaded" in text
    assert "samplers started cameras=cam-b" in text
    assert "sampler stopped camera=cam-a reason=configuration" in text
