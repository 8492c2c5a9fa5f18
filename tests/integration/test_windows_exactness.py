"""The windows app through the real broker gives exactly the windows computed
independently from the events: uninterrupted, killed with SIGKILL mid-stream and
restarted, and with two workers sharing the partitions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from infra.kafka_broker import EmbeddedKafka
from schemas.codec import AvroCodec
from schemas.records import DetectionEvent
from schemas.registry import LocalResolver
from stream_apps.tally import align_ms
from tests.kafka_io import Keyed, read_topic, read_until
from tests.window_streams import (
    GRACE_MS,
    REGIONS,
    SIZE_MS,
    comparable,
    expected_windows,
    flush_events,
    random_stream,
)
from tests.windows_worker import (
    kill_worker,
    produce_checked,
    start_worker,
    stop_worker,
    wait_for_topic,
    write_config,
)

pytestmark = pytest.mark.integration

CAMERAS = sorted(REGIONS)


@dataclass
class Scenario:
    bootstrap: str
    prefix: str
    config_path: Path
    log_path: Path
    producer: Producer
    codec: AvroCodec
    events: list[DetectionEvent]
    flush: list[DetectionEvent]
    expected: dict[str, dict[str, Any]]

    def send(self, events: list[DetectionEvent]) -> None:
        """Publish keyed by camera; cameras alternate between the two
        partitions so that neither is idle."""
        produce_checked(
            self.producer,
            self.codec.topic,
            [
                (
                    event["camera_id"].encode(),
                    self.codec.encode(event),
                    CAMERAS.index(event["camera_id"]) % 2,
                )
                for event in events
            ],
        )

    def windows_read(self) -> int:
        return len(
            read_topic(
                self.bootstrap, f"{self.prefix}pantau.windows", "window_aggregate"
            )
        )

    def wait_windows(self, count: int) -> None:
        """Wait until the windows topic holds ``count`` messages."""
        read_until(
            self.bootstrap,
            f"{self.prefix}pantau.windows",
            "window_aggregate",
            lambda got: len(got) >= count,
            60,
        )

    def finals(self) -> tuple[dict[str, dict[str, Any]], list[Keyed]]:
        """Wait until every expected window is final; returns the final
        aggregates by key, and every windows-topic message."""

        def final_keys(got: list[Keyed]) -> set[str]:
            return {(key or b"").decode() for key, w in got if w["is_final"]}

        messages = read_until(
            self.bootstrap,
            f"{self.prefix}pantau.windows",
            "window_aggregate",
            lambda got: self.expected.keys() <= final_keys(got),
            150,
        )
        finals: dict[str, dict[str, Any]] = {}
        for key, window in messages:
            if window["is_final"]:
                name = (key or b"").decode()
                # A window republished after a crash must say the same.
                if name in finals:
                    assert comparable(window) == comparable(finals[name]), name  # type: ignore[arg-type]
                finals[name] = window
        return finals, messages


@pytest.fixture
def scenario(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> Iterator[Scenario]:
    bootstrap = kafka_broker.bootstrap_servers
    rng = random.Random(20261203)
    events = random_stream(rng, minutes=55)
    flush_at_ms = (
        align_ms(max(e["captured_at_ms"] for e in events), SIZE_MS)
        + 2 * SIZE_MS
        + GRACE_MS
    )
    producer = Producer({"bootstrap.servers": bootstrap})
    yield Scenario(
        bootstrap=bootstrap,
        prefix=topic_prefix,
        config_path=write_config(
            tmp_path / "pantau.yaml",
            bootstrap,
            topic_prefix,
            REGIONS,
            window_idle_s=600,
        ),
        log_path=tmp_path / "windows.log",
        producer=producer,
        codec=AvroCodec(
            f"{topic_prefix}pantau.detections", "detection_event", LocalResolver()
        ),
        events=events,
        flush=flush_events(rng, flush_at_ms),
        expected=expected_windows(events, flush_at_ms - GRACE_MS),
    )


def assert_exact(scenario: Scenario, finals: dict[str, dict[str, Any]]) -> None:
    dead = read_topic(
        scenario.bootstrap, f"{scenario.prefix}pantau.dead-letter", "dead_letter"
    )
    assert [(d["error_type"], d["reason"]) for d in dead] == []
    got = {key: comparable(w) for key, w in finals.items() if key in scenario.expected}  # type: ignore[arg-type]
    assert got == scenario.expected, scenario.log_path.read_text()[-3000:]
    levels = {w["scope_level"] for w in finals.values()}
    assert levels == {"CAMERA", "KELURAHAN", "KECAMATAN", "CITY"}
    kinds = {w["window_kind"] for w in finals.values()}
    assert kinds == {"TUMBLING", "ROLLING"}


def test_uninterrupted_run_gives_the_expected_windows(scenario: Scenario) -> None:
    worker = start_worker(scenario.config_path, scenario.log_path)
    try:
        wait_for_topic(scenario.producer, scenario.codec.topic, scenario.log_path)
        scenario.send(scenario.events + scenario.flush)
        finals, _ = scenario.finals()
    finally:
        assert stop_worker(worker) == 0, scenario.log_path.read_text()[-3000:]
    assert_exact(scenario, finals)
    assert (
        read_topic(
            scenario.bootstrap,
            f"{scenario.prefix}pantau.late-events",
            "detection_event",
        )
        == []
    )
    # The mobility and compliance views carry the same windows.
    city_key = next(
        k for k in scenario.expected if k.startswith("CITY:") and ":TUMBLING:" in k
    )
    mobility = [
        record
        for key, record in read_until(
            scenario.bootstrap,
            f"{scenario.prefix}pantau.mobility",
            "mobility",
            lambda got: any(k == city_key.encode() and r["is_final"] for k, r in got),
            30,
        )
        if key == city_key.encode() and record["is_final"]
    ]
    expected = scenario.expected[city_key]
    assert mobility[-1]["frames"] == expected["frames"]
    assert mobility[-1]["vehicles_avg_all"] == pytest.approx(
        sum(expected["vehicles_sum"].values()) / expected["frames"]
    )


def test_sigkill_mid_stream_and_restart_gives_the_same_windows(
    scenario: Scenario,
) -> None:
    rng = random.Random(4)
    third = len(scenario.events) // 3
    chunks = [
        scenario.events[:third],
        scenario.events[third : 2 * third],
        scenario.events[2 * third :] + scenario.flush,
    ]
    worker = start_worker(scenario.config_path, scenario.log_path)
    try:
        wait_for_topic(scenario.producer, scenario.codec.topic, scenario.log_path)
        for chunk in chunks[:2]:
            target = scenario.windows_read() + rng.randint(1, 50)
            scenario.send(chunk)
            # Kill once the worker is busy with this chunk.
            scenario.wait_windows(target)
            kill_worker(worker)
            worker = start_worker(scenario.config_path, scenario.log_path)
        scenario.send(chunks[2])
        finals, _ = scenario.finals()
    finally:
        assert stop_worker(worker) == 0, scenario.log_path.read_text()[-3000:]
    assert_exact(scenario, finals)


def test_two_workers_give_the_same_windows_as_one(scenario: Scenario) -> None:
    workers = [start_worker(scenario.config_path, scenario.log_path) for _ in range(2)]
    try:
        wait_for_topic(scenario.producer, scenario.codec.topic, scenario.log_path)
        scenario.send(scenario.events + scenario.flush)
        finals, _ = scenario.finals()
    finally:
        codes = [stop_worker(worker) for worker in workers]
    assert codes == [0, 0], scenario.log_path.read_text()[-3000:]
    assert_exact(scenario, finals)
