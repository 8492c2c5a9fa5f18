"""The offset guard reads back, in order, the messages a consumer skipped."""

from __future__ import annotations

import asyncio

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from infra.kafka_broker import EmbeddedKafka
from stream_apps.offset_guard import OffsetGuard

pytestmark = pytest.mark.integration


def test_missing_messages_are_read_back_in_order(
    kafka_broker: EmbeddedKafka, topic_prefix: str
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    topic = f"{topic_prefix}gaps"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2)])[topic].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for index in range(10):
        producer.produce(topic, key=b"k%d" % index, value=b"v%d" % index, partition=1)
    assert producer.flush(30) == 0
    guard = OffsetGuard(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic_prefix}gaps",
            "enable.auto.commit": False,
        }
    )

    assert asyncio.run(guard.missing(topic, 1, 3, 3)) == []
    assert asyncio.run(guard.missing(topic, 1, 2, 3)) == []  # a replay
    gap = asyncio.run(guard.missing(topic, 1, 7, 3))
    assert [(m.offset, m.key, m.value) for m in gap] == [
        (3, b"k3", b"v3"),
        (4, b"k4", b"v4"),
        (5, b"k5", b"v5"),
        (6, b"k6", b"v6"),
    ]
    assert all(m.topic == topic and m.partition == 1 for m in gap)
    # A stage that has seen nothing yet starts from the earliest offset.
    first = asyncio.run(guard.missing(topic, 1, 2, None))
    assert [m.offset for m in first] == [0, 1]
