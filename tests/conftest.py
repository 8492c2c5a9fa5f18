"""Shared fixtures: real services started on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kafka_broker import EmbeddedKafka
from infra.kafka_dist import ensure_kafka_libs
from infra.ports import free_port

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
