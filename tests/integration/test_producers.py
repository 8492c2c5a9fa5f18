"""Frame samplers against real servers: the broker restarting under them, and
real camera protocols served on loopback from the demo footage."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from infra.embedded import Endpoints
from infra.kafka_broker import EmbeddedKafka
from pantau.config import PantauConfig
from pantau.kafka import topic_name
from pantau.services import build_samplers, run_samplers
from schemas.codec import AvroCodec
from schemas.registry import LocalResolver
from schemas.topics import CAMERA_STATUS, FRAMES
from tests.conftest import make_config

pytestmark = pytest.mark.integration


def read_topic(
    bootstrap: str, topic: str, record_type: str, idle_s: float = 3.0
) -> list[dict[str, Any]]:
    """Every message on a topic, read until nothing new arrives for ``idle_s``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    codec = AvroCodec(topic, record_type, LocalResolver())
    records: list[dict[str, Any]] = []
    last_new = time.monotonic()
    try:
        while time.monotonic() - last_new < idle_s:
            message = consumer.poll(0.3)
            if message is None or message.error() is not None:
                continue
            records.append(codec.decode(message.value()))
            last_new = time.monotonic()
    finally:
        consumer.close()
    return records


def run_in_thread(
    config: PantauConfig, bootstrap: str, max_frames: int | None
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    publisher, samplers = build_samplers(
        config, Endpoints(bootstrap, "http://127.0.0.1:1"), stop, max_frames=max_frames
    )
    thread = threading.Thread(
        target=run_samplers, args=(publisher, samplers, 120.0), daemon=True
    )
    thread.start()
    return thread, stop


def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path, sample_interval_s=0.05)
    frames = 80
    thread, _stop = run_in_thread(config, bootstrap, max_frames=frames)
    time.sleep(1.5)
    kafka_broker.restart()
    thread.join(180)
    assert not thread.is_alive()

    records = read_topic(bootstrap, topic_name(config.kafka, FRAMES), "frame")
    sequences = [record["frame_seq"] for record in records]
    assert sorted(sequences) == list(range(frames))  # nothing lost, nothing twice
    statuses = read_topic(
        bootstrap, topic_name(config.kafka, CAMERA_STATUS), "camera_status", 1.0
    )
    assert [s["state"] for s in statuses] == ["ONLINE"]
