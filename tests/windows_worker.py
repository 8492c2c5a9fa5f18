"""Running `pantau windows run` as a real process in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import Producer

from tests.conftest import VTEST


def write_config(
    path: Path,
    bootstrap: str,
    topic_prefix: str,
    cameras: dict[str, tuple[str, str, str]],
    **pipeline: Any,
) -> Path:
    """A configuration file for windows workers: the test broker, two
    partitions, the given cameras (id to city, kecamatan, kelurahan)."""
    path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(path.parent / "state"),
                "kafka": {
                    "bootstrap_servers": bootstrap,
                    "topic_prefix": topic_prefix,
                    "default_partitions": 2,
                    "client_properties": {
                        "session.timeout.ms": "6000",
                        "heartbeat.interval.ms": "1000",
                    },
                },
                "clickhouse": {"url": "chdb:///nowhere"},
                "pipeline": pipeline,
                "cameras": [
                    {
                        "id": camera,
                        "source_url": str(VTEST),
                        "region": {
                            "city": city,
                            "kecamatan": kecamatan,
                            "kelurahan": kelurahan,
                        },
                    }
                    for camera, (city, kecamatan, kelurahan) in cameras.items()
                ],
            }
        )
    )
    return path


def start_worker(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """A windows worker process, its output appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pantau.cli",
                "--config",
                str(config_path),
                "--log-level",
                os.environ.get("PANTAU_TEST_WORKER_LOG_LEVEL", "INFO"),
                "windows",
                "run",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def stop_worker(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM, as an operator would; returns the exit status."""
    process.send_signal(signal.SIGTERM)
    return process.wait(60)


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no chance to flush or commit anything."""
    process.kill()
    process.wait(30)


def wait_for_topic(
    producer: Producer, topic: str, log_path: Path, partitions: int = 2
) -> None:
    """Wait until a worker has created the topics and every partition of
    ``topic`` has a leader: a message sent to a partition without one can fail
    its delivery."""
    deadline = time.monotonic() + 60
    while True:
        metadata = producer.list_topics(timeout=5).topics.get(topic)
        if metadata is not None and metadata.error is None:
            leaders = [p.leader for p in metadata.partitions.values()]
            if len(leaders) == partitions and min(leaders) >= 0:
                return
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.3)


def produce_checked(
    producer: Producer, topic: str, messages: list[tuple[bytes, bytes, int]]
) -> None:
    """Send (key, value, partition) messages and fail unless Kafka acknowledged
    every one of them."""
    errors: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            errors.append(str(error))

    for key, value, partition in messages:
        producer.produce(
            topic, key=key, value=value, partition=partition, on_delivery=delivered
        )
        producer.poll(0)
    assert producer.flush(30) == 0, "messages still unsent after 30 s"
    assert errors == [], errors
