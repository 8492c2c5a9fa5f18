"""The topic catalogue is created once, with its settings, and re-running the
admin step changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource

from infra.kafka_broker import EmbeddedKafka
from infra.topics_admin import (
    TopicSetupError,
    ensure_changelog_topics,
    ensure_topics,
)
from pantau.kafka import topic_name
from schemas.topics import ALL_TOPICS, DETECTIONS, FRAMES, WINDOWS
from tests.conftest import make_config

pytestmark = pytest.mark.integration


def test_topics_are_created_idempotently_with_their_settings(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path)
    first = ensure_topics(config.kafka, bootstrap)
    second = ensure_topics(config.kafka, bootstrap)

    assert first == second
    assert set(first) == {topic_name(config.kafka, t) for t in ALL_TOPICS}
    assert set(first.values()) == {2}

    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = {
        topic: ConfigResource("topic", topic_name(config.kafka, topic))
        for topic in (FRAMES, DETECTIONS, WINDOWS)
    }
    described = admin.describe_configs(list(wanted.values()))
    settings = {
        topic: {
            name: entry.value
            for name, entry in described[resource].result(timeout=10).items()
        }
        for topic, resource in wanted.items()
    }
    assert settings[FRAMES]["retention.ms"] == "3600000"
    assert settings[FRAMES]["cleanup.policy"] == "delete"
    assert settings[DETECTIONS]["retention.ms"] == str(7 * 24 * 3_600_000)
    assert settings[WINDOWS]["cleanup.policy"] == "compact"
    assert settings[FRAMES]["max.message.bytes"] == str(10 * 1024 * 1024)


def test_changelog_topics_exist_with_leaders_before_faust_starts(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path)
    names = [f"{topic_prefix}app-a-changelog", f"{topic_prefix}app-b-changelog"]
    ensure_changelog_topics(config.kafka, bootstrap, names, 3)
    ensure_changelog_topics(config.kafka, bootstrap, names, 3)

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = admin.list_topics(timeout=10).topics
    for name in names:
        partitions = topics[name].partitions
        assert sorted(partitions) == [0, 1, 2]
        assert all(p.leader >= 0 for p in partitions.values())
    described = admin.describe_configs([ConfigResource("topic", names[0])])
    [entries] = [future.result(timeout=10) for future in described.values()]
    assert entries["cleanup.policy"].value == "compact"

    with pytest.raises(TopicSetupError, match="expected 2, got 3"):
        ensure_changelog_topics(config.kafka, bootstrap, names, 2)
