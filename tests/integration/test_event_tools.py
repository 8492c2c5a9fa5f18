"""pantau events replay and tail against the real broker."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from infra.kafka_broker import EmbeddedKafka
from infra.topics_admin import ensure_topics
from pantau.errors import UsageError
from stream_apps.event_tools import replay, tail
from tests.conftest import make_config
from tests.records import detection_event

pytestmark = pytest.mark.integration


def test_replayed_events_come_back_from_tail(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path)
    ensure_topics(config.kafka, bootstrap)
    events = [detection_event(f"e{i}", 1_767_225_600_000 + i, i) for i in range(5)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n\n")

    assert replay(config.kafka, bootstrap, path) == 5
    out = io.StringIO()
    printed = tail(
        config.kafka,
        bootstrap,
        "pantau.detections",
        out,
        from_beginning=True,
        max_messages=5,
        idle_timeout_s=20,
    )
    assert printed == 5
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(line["value"]["event_id"] for line in lines) == [
        f"e{i}" for i in range(5)
    ]
    assert {line["key"] for line in lines} == {"cam-1"}


def test_replay_names_the_bad_line_and_sends_nothing(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path)
    ensure_topics(config.kafka, bootstrap)
    good = json.dumps(detection_event("ok", 1, 1))
    broken = {**detection_event("bad", 2, 1), "counts": {"people": "many"}}
    path = tmp_path / "events.jsonl"
    path.write_text(f"{good}\n{json.dumps(broken)}\n")
    with pytest.raises(UsageError, match=r"events\.jsonl:2:"):
        replay(config.kafka, bootstrap, path)
    out = io.StringIO()
    assert (
        tail(
            config.kafka,
            bootstrap,
            "pantau.detections",
            out,
            from_beginning=True,
            max_messages=None,
            idle_timeout_s=2,
        )
        == 0
    )
    with pytest.raises(UsageError, match="unknown topic"):
        tail(
            config.kafka,
            bootstrap,
            "pantau.nope",
            out,
            from_beginning=True,
            max_messages=1,
            idle_timeout_s=1,
        )
