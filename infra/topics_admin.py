"""Create Pantau's topics on the broker, idempotently, from the topic catalogue."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from pantau.config import KafkaConfig
from pantau.kafka import MAX_MESSAGE_BYTES, topic_name
from schemas.topics import ALL_TOPICS, ANNOTATED_FRAMES, FRAMES, TopicSpec

log = logging.getLogger("pantau.infra.topics")


class TopicSetupError(RuntimeError):
    """The broker refused to create or describe a topic."""


def topic_settings(kafka: KafkaConfig, topic: TopicSpec) -> dict[str, str]:
    """Broker-side configuration of one topic."""
    settings = {
        "cleanup.policy": topic.cleanup_policy,
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
        "min.insync.replicas": str(min(2, kafka.replication_factor)),
    }
    short_lived = topic in (FRAMES, ANNOTATED_FRAMES)
    retention_ms = kafka.frames_retention_ms if short_lived else topic.retention_ms
    if retention_ms is not None:
        settings["retention.ms"] = str(retention_ms)
        # Segments roll well inside the retention so old data really goes.
        settings["segment.ms"] = str(max(60_000, retention_ms // 4))
    return settings


def ensure_topics(
    kafka: KafkaConfig, bootstrap: str, timeout_s: float = 30.0
) -> dict[str, int]:
    """Create every catalogue topic that is missing; returns each topic's
    partition count as it is on the broker."""
    admin = AdminClient({**kafka.client_config(bootstrap)})
    existing = admin.list_topics(timeout=timeout_s).topics
    wanted = {topic_name(kafka, topic): topic for topic in ALL_TOPICS}
    _create(
        admin,
        [
            NewTopic(
                name,
                num_partitions=kafka.default_partitions,
                replication_factor=kafka.replication_factor,
                config=topic_settings(kafka, topic),
            )
            for name, topic in wanted.items()
            if name not in existing
        ],
        timeout_s,
    )
    # A topic just created reaches the metadata of every broker a moment later.
    metadata = _wait_for(
        admin,
        list(wanted),
        lambda topic: topic is not None,
        "missing from the broker's metadata",
        timeout_s,
    )
    return {name: len(metadata[name].partitions) for name in wanted}


def ensure_changelog_topics(
    kafka: KafkaConfig,
    bootstrap: str,
    names: list[str],
    partitions: int,
    timeout_s: float = 30.0,
) -> None:
    """Create the windows app's table changelogs (compacted, ``partitions``
    each) before faust starts, and wait until every partition has a leader.

    faust would declare them itself, but a worker that writes to a table while
    its consumer still sees a just-created changelog without partitions stops
    the agent (PartitionsMismatch), again on every restart of the agent, until
    the consumer's metadata next refreshes.
    """
    admin = AdminClient({**kafka.client_config(bootstrap)})
    existing = admin.list_topics(timeout=timeout_s).topics
    settings = {
        "cleanup.policy": "compact",
        "min.insync.replicas": str(min(2, kafka.replication_factor)),
    }
    for name in names:
        if name in existing and len(existing[name].partitions) != partitions:
            raise TopicSetupError(
                f"changelog topic {name} must have as many partitions as the "
                f"detections topic: expected {partitions}, got "
                f"{len(existing[name].partitions)}; delete it (the tables are "
                "rebuilt from it, so only when the windows app is stopped and "
                "its windows may start again empty) or add partitions to the "
                "detections topic"
            )
    _create(
        admin,
        [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=kafka.replication_factor,
                config=settings,
            )
            for name in names
            if name not in existing
        ],
        timeout_s,
    )
    _wait_for(admin, names, _led, "without a leader for every partition", timeout_s)


def _create(admin: AdminClient, topics: list[NewTopic], timeout_s: float) -> None:
    """Create ``topics``; one another client created meanwhile is fine."""
    if not topics:
        return
    futures: dict[str, Any] = admin.create_topics(
        topics, operation_timeout=timeout_s, request_timeout=timeout_s
    )
    for name, future in futures.items():
        try:
            future.result()
            log.info("topic created topic=%s", name)
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.name() != "TOPIC_ALREADY_EXISTS":
                raise TopicSetupError(
                    f"cannot create topic {name}: {kafka_error.str()}"
                ) from error


def _wait_for(
    admin: AdminClient,
    names: list[str],
    ready: Callable[[Any], bool],
    problem: str,
    timeout_s: float,
) -> dict[str, Any]:
    """Poll the broker's metadata until ``ready`` holds for every topic named;
    returns that metadata, by topic name."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata: dict[str, Any] = admin.list_topics(timeout=timeout_s).topics
        waiting = sorted(name for name in names if not ready(metadata.get(name)))
        if not waiting:
            return metadata
        if time.monotonic() > deadline:
            raise TopicSetupError(
                f"topics {problem} {timeout_s:.0f} s after they were created: "
                f"{', '.join(waiting)}; check the broker's log"
            )
        time.sleep(0.2)


def _led(topic: Any) -> bool:
    """True when the topic's metadata lists partitions and each has a leader."""
    if topic is None or topic.error is not None or not topic.partitions:
        return False
    return all(p.leader >= 0 and p.error is None for p in topic.partitions.values())
