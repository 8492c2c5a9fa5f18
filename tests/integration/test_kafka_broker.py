"""The embedded Kafka broker against a real client: data in, data out, restarts."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

# confluent-kafka 2.16 documents admin.NewTopic but its stubs do not re-export it.
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from infra.kafka_broker import MESSAGE_MAX_BYTES, EmbeddedKafka, KafkaStartError
from infra.ports import free_port, port_is_free

pytestmark = pytest.mark.integration

CONSUMER_TIMEOUTS = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


def _new_topic(broker: EmbeddedKafka, partitions: int = 1) -> str:
    topic = f"test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    futures[topic].result(timeout=30)
    return topic


def _produce(
    broker: EmbeddedKafka, topic: str, records: list[tuple[bytes, bytes]]
) -> None:
    errors: list[KafkaError] = []

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    producer = Producer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "message.max.bytes": MESSAGE_MAX_BYTES,
            "acks": "all",
        }
    )
    for key, value in records:
        producer.produce(topic, value, key, on_delivery=on_delivery)
    assert producer.flush(30) == 0, "producer did not deliver everything within 30 s"
    assert errors == []


def _consume(
    broker: EmbeddedKafka, topic: str, count: int, group: str, commit: bool = False
) -> list[tuple[bytes | None, bytes | None, int]]:
    """Read `count` records as (key, value, offset); commit them when asked."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap_servers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **CONSUMER_TIMEOUTS,
        }
    )
    received: list[tuple[bytes | None, bytes | None, int]] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 60
        while len(received) < count and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            received.append((message.key(), message.value(), message.offset() or 0))
            if commit and len(received) == count:
                consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    assert len(received) == count, f"expected {count} records, got {len(received)}"
    return received


@pytest.fixture
def own_kafka(kafka_broker: EmbeddedKafka, tmp_path: Path) -> Iterator[EmbeddedKafka]:
    """A broker of its own, for tests that stop or kill it."""
    port = free_port(exclude={kafka_broker.port, kafka_broker.controller_port})
    controller_port = free_port(
        exclude={kafka_broker.port, kafka_broker.controller_port, port}
    )
    broker = EmbeddedKafka(
        tmp_path, kafka_broker.libs_dir, port, controller_port, heap_mb=512
    )
    try:
        yield broker
    finally:
        broker.stop()


def test_round_trip_including_a_frame_sized_record(kafka_broker: EmbeddedKafka) -> None:
    topic = _new_topic(kafka_broker)
    frame = os.urandom(3 * 1024 * 1024)  # above the 1 MB Kafka default
    records = [(b"jkt-001", b"hello"), (b"jkt-002", frame)]

    _produce(kafka_broker, topic, records)
    received = _consume(kafka_broker, topic, 2, group=f"g-{topic}")

    assert [(key, value) for key, value, _ in received] == records


@pytest.mark.parametrize("taken", ["port", "controller_port"])
def test_second_broker_on_a_taken_port_fails_fast(
    kafka_broker: EmbeddedKafka, tmp_path: Path, taken: str
) -> None:
    used = {kafka_broker.port, kafka_broker.controller_port}
    free = free_port(exclude=used)
    ports = {"port": free, "controller_port": free}
    ports[taken] = getattr(kafka_broker, taken)
    other = EmbeddedKafka(tmp_path, kafka_broker.libs_dir, **ports)

    with pytest.raises(KafkaStartError, match=rf"port {ports[taken]} .*already taken"):
        other.start()

    assert not other.state_path.exists()
    assert kafka_broker.is_running()


def test_start_twice_on_one_state_dir_fails(kafka_broker: EmbeddedKafka) -> None:
    with pytest.raises(KafkaStartError, match="already runs"):
        kafka_broker.start()

    assert kafka_broker.is_running()


def test_from_state_finds_the_running_broker(kafka_broker: EmbeddedKafka) -> None:
    found = EmbeddedKafka.from_state(kafka_broker.state_dir)

    assert found is not None
    assert found.bootstrap_servers == kafka_broker.bootstrap_servers
    assert found.controller_port == kafka_broker.controller_port
    assert found.is_running()


def test_data_and_offsets_survive_restart_and_kill(own_kafka: EmbeddedKafka) -> None:
    own_kafka.start()
    cluster_id = (own_kafka.data_dir / "meta.properties").read_text()
    topic = _new_topic(own_kafka)
    records = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(10)]
    _produce(own_kafka, topic, records)
    _consume(own_kafka, topic, 4, group="resumer", commit=True)

    first_pid = _pid(own_kafka)
    own_kafka.restart()
    assert _pid(own_kafka) != first_pid
    resumed = _consume(own_kafka, topic, 6, group="resumer")
    assert [offset for _, _, offset in resumed] == list(range(4, 10))

    os.killpg(_pid(own_kafka), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while own_kafka.is_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not own_kafka.is_running()
    own_kafka.start()  # finds the stale broker.json of the killed broker

    everything = _consume(own_kafka, topic, 10, group="fresh")
    assert [(key, value) for key, value, _ in everything] == records
    assert (own_kafka.data_dir / "meta.properties").read_text() == cluster_id

    assert own_kafka.stop() is True
    assert not own_kafka.state_path.exists()
    assert own_kafka.stop() is False


def test_broker_that_exits_during_start_up_reports_its_log(
    own_kafka: EmbeddedKafka,
) -> None:
    own_kafka.data_dir.mkdir(parents=True)
    # Storage formatted for another node: the broker refuses it and exits.
    (own_kafka.data_dir / "meta.properties").write_text(
        "version=1\ncluster.id=nXhdXMkzQ0y_Br3C9yyVpA\nnode.id=7\n"
        "directory.id=L2PoBqkoRNacA4XOCJPb6g\n"
    )

    with pytest.raises(KafkaStartError, match=r"exited with code \d+(.|\n)*server.log"):
        own_kafka.start()

    assert not own_kafka.state_path.exists()
    assert own_kafka.stop() is False


def test_broker_that_is_too_slow_is_killed(own_kafka: EmbeddedKafka) -> None:
    with pytest.raises(KafkaStartError, match="did not answer"):
        own_kafka.start(timeout_s=0.5)

    assert not own_kafka.is_running()
    assert not own_kafka.state_path.exists()
    assert port_is_free(own_kafka.port)


def _pid(broker: EmbeddedKafka) -> int:
    pid = broker.pid
    assert pid is not None, f"no broker.json under {broker.state_dir}"
    return pid
