"""Shared fixtures: real services started on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kafka_broker import EmbeddedKafka
from infra.kafka_dist import ensure_kafka_libs
from infra.ports import free_port
from pantau.config import PantauConfig

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / ".cache"


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedKafka]:
    """A real single-node Kafka broker shared by the whole test session."""
    libs_dir = ensure_kafka_libs(CACHE_DIR)
    port = free_port()
    broker = EmbeddedKafka(
        tmp_path_factory.mktemp("kafka-state"),
        libs_dir,
        port=port,
        controller_port=free_port(exclude={port}),
    )
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """A prefix that gives each test its own topics on the shared broker."""
    name = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)
    return f"t-{name[-60:]}-{free_port()}."


def make_config(
    bootstrap: str,
    topic_prefix: str,
    state_dir: Path,
    clickhouse_url: str | None = None,
    **camera: object,
) -> PantauConfig:
    """A configuration for one test: the session broker, the test's own topics,
    one camera reading the demo footage."""
    camera_fields: dict[str, object] = {
        "id": "cam-1",
        "source_url": str(VTEST),
        "region": {"city": "Jakarta", "kecamatan": "Gambir", "kelurahan": "Gambir"},
        "sample_interval_s": 0.1,
    }
    camera_fields.update(camera)
    return PantauConfig.model_validate(
        {
            "state_dir": state_dir,
            "cache_dir": CACHE_DIR,
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topic_prefix": topic_prefix,
                "default_partitions": 2,
                "client_properties": {
                    "session.timeout.ms": "6000",
                    "heartbeat.interval.ms": "1000",
                },
            },
            "clickhouse": {"url": clickhouse_url},
            "cameras": [camera_fields],
        }
    )
