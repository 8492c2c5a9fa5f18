"""Kafka clients built the same way for every service: the configured security
settings, idempotent producers, manual-commit consumers."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer

from pantau.config import KafkaConfig
from schemas.registry import LocalResolver, RegistryResolver, SchemaResolver
from schemas.topics import TopicSpec

log = logging.getLogger("pantau.kafka")

# Up to 10 MB per message: frames are JPEG images.
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


def topic_name(kafka: KafkaConfig, topic: TopicSpec) -> str:
    """The topic's name on the broker, with the configured prefix."""
    return topic.full_name(kafka.topic_prefix)


def producer_config(
    kafka: KafkaConfig, bootstrap: str, client_id: str
) -> dict[str, Any]:
    """librdkafka settings for an idempotent, acks=all producer."""
    conf: dict[str, Any] = {
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "message.max.bytes": MAX_MESSAGE_BYTES,
        "queue.buffering.max.kbytes": 256 * 1024,
        "delivery.timeout.ms": 120_000,
    }
    conf.update(kafka.client_config(bootstrap))
    return conf


def consumer_config(
    kafka: KafkaConfig, bootstrap: str, group_id: str, client_id: str
) -> dict[str, Any]:
    """librdkafka settings for a consumer that commits only what it finished."""
    conf: dict[str, Any] = {
        "client.id": client_id,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "max.poll.interval.ms": 300_000,
        "fetch.message.max.bytes": MAX_MESSAGE_BYTES,
        "isolation.level": "read_committed",
    }
    conf.update(kafka.client_config(bootstrap))
    return conf


def make_producer(kafka: KafkaConfig, bootstrap: str, client_id: str) -> Producer:
    """An idempotent producer; the caller polls it and flushes on shutdown."""
    return Producer(producer_config(kafka, bootstrap, client_id))


def make_consumer(
    kafka: KafkaConfig, bootstrap: str, group_id: str, client_id: str
) -> Consumer:
    """A consumer in ``group_id`` that never commits on its own."""
    return Consumer(consumer_config(kafka, bootstrap, group_id, client_id))


def make_resolver(kafka: KafkaConfig) -> SchemaResolver:
    """The Schema Registry when one is configured, else the local catalogue."""
    if kafka.schema_registry_url is None:
        return LocalResolver()
    auth = kafka.schema_registry_basic_auth
    return RegistryResolver(
        kafka.schema_registry_url, auth.get_secret_value() if auth else None
    )


def message_error(message: Message) -> KafkaError | None:
    """The error a consumed message carries, logged once here; None for data."""
    error: KafkaError | None = message.error()
    if error is not None:
        log.warning(
            "consumer error topic=%s partition=%s code=%s reason=%s",
            message.topic(),
            message.partition(),
            error.name(),
            error.str(),
        )
    return error


# A commit refused for one of these leaves the work safe to repeat: the group
# lost or is moving the partitions (a broker restart, a session that timed
# out), or there was nothing to commit. The messages are delivered again, to
# this consumer or another, once the group has settled.
_COMMIT_RETRIABLE = frozenset(
    {
        KafkaError._ASSIGNMENT_LOST,
        KafkaError._NO_OFFSET,
        KafkaError._STATE,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._WAIT_COORD,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.NOT_COORDINATOR,
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.UNKNOWN_MEMBER_ID,
    }
)


def commit_done(consumer: Consumer, what: str, message: Message | None = None) -> bool:
    """Commit the consumer's positions (or just past ``message``) and wait.

    Returns False, with a warning, when the group refused the commit in a way
    that only means the work is delivered again (partitions lost in a
    rebalance or a broker restart): a worker goes on instead of stopping.
    Any other refusal is raised.
    """
    try:
        if message is None:
            consumer.commit(asynchronous=False)
        else:
            consumer.commit(message=message, asynchronous=False)
    except KafkaException as error:
        kafka_error: KafkaError = error.args[0]
        if kafka_error.code() not in _COMMIT_RETRIABLE:
            raise
        log.warning(
            "offset commit refused; %s will be delivered again once the group "
            "has settled code=%s reason=%s",
            what,
            kafka_error.name(),
            kafka_error.str(),
        )
        return False
    return True
