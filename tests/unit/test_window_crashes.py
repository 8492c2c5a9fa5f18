"""A worker killed at any write, restarted from its last commit, gives the same
final windows as a run that was never interrupted.

The store here stands in for a faust table and its changelog: it records every
write in order and, after a crash, only a prefix of them survives: all writes
made before the last offset commit (faust flushes the producer before it
commits) and an arbitrary part of the rest. Outputs sent after the last commit
are lost too, except those the worker waited for (the outbox). The stages are
then restarted on the surviving changelog and read their input again from the
committed offsets.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas.records import DetectionEvent, WindowAggregate
from stream_apps.camera_windows import CameraWindows, PartialMessage, WatermarkMessage
from stream_apps.region_windows import RegionWindows
from stream_apps.tally import aggregate_key, align_ms
from tests.unit.test_window_state import partition_of, settings
from tests.window_streams import (
    GRACE_MS,
    NOW_MS,
    SIZE_MS,
    comparable,
    expected_windows,
    flush_events,
    random_stream,
)

PARTITIONS = 2


class KilledError(Exception):
    """The worker is killed here."""


class Changelog:
    """A table whose writes are recorded in order, as its changelog holds them."""

    def __init__(self, log: list[tuple[str, str | None]] | None = None) -> None:
        self.data: dict[str, Any] = {}
        self.log: list[tuple[str, str | None]] = []
        self.crash_at: int | None = None
        for key, raw in log or []:
            if raw is None:
                self.data.pop(key, None)
            else:
                self.data[key] = json.loads(raw)
            self.log.append((key, raw))

    def get(self, key: str, /) -> Any:
        return self.data.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._tick()
        self.data[key] = value
        self.log.append((key, json.dumps(value)))

    def __delitem__(self, key: str) -> None:
        self._tick()
        del self.data[key]
        self.log.append((key, None))

    def _tick(self) -> None:
        if self.crash_at is not None and len(self.log) >= self.crash_at:
            raise KilledError

    def assert_values_unchanged_since_written(self) -> None:
        """faust serialises a value when its buffer drains: a value changed in
        place after it was written would reach the changelog changed."""
        last: dict[str, str | None] = dict(self.log)
        for key, value in self.data.items():
            assert json.dumps(value) == last[key], key


@dataclass
class Output:
    """What one input message sent, and whether the worker waited for it."""

    windows: list[WindowAggregate] = field(default_factory=list)
    partials: list[tuple[str, PartialMessage]] = field(default_factory=list)
    watermark: WatermarkMessage | None = None
    outbox: list[str] = field(default_factory=list)


Handler = Callable[[Any, int, int, Any], Output]


def camera_handler(stage: Any, partition: int, offset: int, event: Any) -> Output:
    out = stage.on_event(partition, offset, event, NOW_MS)
    return Output(out.windows, out.partials, out.watermark, out.outbox)


def region_handler(stage: Any, partition: int, offset: int, item: Any) -> Output:
    key, message = item
    if message["type"] == "watermark":
        out = stage.on_watermark(partition, offset, message, NOW_MS)
    else:
        out = stage.on_partial(partition, offset, key, message, NOW_MS)
    assert out.late == []
    return Output(out.windows, outbox=out.outbox)


def run_stage(
    inputs: list[tuple[int, Any]],
    make: Callable[[Changelog], Any],
    handle: Handler,
    rng: random.Random | None,
) -> list[Output]:
    """Run a stage over ``inputs`` (partition, message) in order; with ``rng``,
    kill it once, at a random write or between its steps, and restart it.
    Returns what reached Kafka, in order."""
    offsets: list[int] = []
    counts = [0] * PARTITIONS
    for partition, _ in inputs:
        offsets.append(counts[partition])
        counts[partition] += 1
    work = list(zip(inputs, offsets, strict=True))
    store = Changelog()
    stage = make(store)

    def step(partition: int, offset: int, item: Any) -> Output:
        out = handle(stage, partition, offset, item)
        # The worker waits for the outbox's acknowledgement, then forgets it.
        stage.delivered(partition, out.outbox)
        return out

    if rng is None:
        outputs = [step(partition, offset, item) for (partition, item), offset in work]
        store.assert_values_unchanged_since_written()
        return outputs

    # Half the time, crash on a message that closes windows: the outbox path.
    closing = [
        index
        for index, out in enumerate(run_stage(inputs, make, handle, None))
        if out.outbox and index >= len(inputs) // 4
    ]
    if closing and rng.random() < 0.5:
        crash_index = rng.choice(closing)
    else:
        crash_index = rng.randrange(len(inputs) // 4, len(inputs))
    commit_index = rng.randint(max(0, crash_index - 80), crash_index)
    mode = rng.choice(["in-writes", "before-send", "in-delivered"])
    delivered: list[Output] = []
    log_at_commit = 0
    for index, ((partition, item), offset) in enumerate(work):
        if index == commit_index:
            log_at_commit = len(store.log)
        if index < crash_index:
            out = step(partition, offset, item)
            if index < commit_index or out.outbox or rng.random() < 0.5:
                # Flushed before the commit, waited for, or simply sent.
                if index >= commit_index and rng.random() < 0.5:
                    out.watermark = None
                delivered.append(out)
            continue
        if mode == "in-writes":
            store.crash_at = len(store.log) + rng.randint(0, 40)
        try:
            out = handle(stage, partition, offset, item)
            if mode == "in-delivered":
                delivered.append(Output(out.windows, out.partials))
                store.crash_at = len(store.log) + rng.randint(0, 2)
                stage.delivered(partition, out.outbox)
        except KilledError:
            pass
        break
    store.assert_values_unchanged_since_written()
    # Most often the changelog had caught up; otherwise any part of what was
    # written after the commit survives.
    survived = len(store.log)
    if rng.random() < 0.5:
        survived = rng.randint(log_at_commit, len(store.log))
    restarted = Changelog(store.log[:survived])
    stage = make(restarted)
    for (partition, item), offset in work[commit_index:]:
        delivered.append(step(partition, offset, item))
    restarted.assert_values_unchanged_since_written()
    return delivered


def finals_of(outputs: list[Output]) -> dict[str, WindowAggregate]:
    finals: dict[str, WindowAggregate] = {}
    for out in outputs:
        for window in out.windows:
            if not window["is_final"]:
                continue
            key = aggregate_key(window)
            if key in finals:
                assert comparable(window) == comparable(finals[key]), key
            finals[key] = window
    return finals


def repartitioned(outputs: list[Output]) -> list[tuple[int, Any]]:
    """The repartition topic as the region stage reads it."""
    messages: list[tuple[int, Any]] = []
    for out in outputs:
        for key, partial in out.partials:
            messages.append((partition_of(key, PARTITIONS), (key, partial)))
        if out.watermark is not None:
            for target in range(PARTITIONS):
                messages.append((target, ("__watermark__", out.watermark)))
    return messages


def run_both(
    events: list[DetectionEvent],
    camera_rng: random.Random | None,
    region_rng: random.Random | None,
) -> dict[str, WindowAggregate]:
    window_settings = settings(PARTITIONS)
    inputs = [(partition_of(e["camera_id"], PARTITIONS), e) for e in events]
    camera_out = run_stage(
        inputs,
        lambda store: CameraWindows(window_settings, store),
        camera_handler,
        camera_rng,
    )
    region_out = run_stage(
        repartitioned(camera_out),
        lambda store: RegionWindows(window_settings, store),
        region_handler,
        region_rng,
    )
    return {**finals_of(camera_out), **finals_of(region_out)}


@pytest.fixture(scope="module")
def stream() -> tuple[list[DetectionEvent], dict[str, Any]]:
    rng = random.Random(2026)
    events = random_stream(rng, minutes=45)
    flush_at_ms = (
        align_ms(max(e["captured_at_ms"] for e in events), SIZE_MS)
        + 2 * SIZE_MS
        + GRACE_MS
    )
    events += flush_events(rng, flush_at_ms)
    return events, expected_windows(events, flush_at_ms - GRACE_MS)


def test_uninterrupted_stages_give_the_expected_windows(
    stream: tuple[list[DetectionEvent], dict[str, Any]],
) -> None:
    events, expected = stream
    finals = run_both(events, None, None)
    assert {k: comparable(finals[k]) for k in expected} == expected


@pytest.mark.parametrize("seed", range(16))
def test_camera_stage_killed_anywhere_gives_the_same_finals(
    seed: int, stream: tuple[list[DetectionEvent], dict[str, Any]]
) -> None:
    events, expected = stream
    finals = run_both(events, random.Random(seed), None)
    assert expected.keys() <= finals.keys()
    assert {k: comparable(finals[k]) for k in expected} == expected


@pytest.mark.parametrize("seed", range(16))
def test_region_stage_killed_anywhere_gives_the_same_finals(
    seed: int, stream: tuple[list[DetectionEvent], dict[str, Any]]
) -> None:
    events, expected = stream
    finals = run_both(events, None, random.Random(100 + seed))
    assert expected.keys() <= finals.keys()
    assert {k: comparable(finals[k]) for k in expected} == expected


@pytest.mark.parametrize("seed", range(6))
def test_both_stages_killed_give_the_same_finals(
    seed: int, stream: tuple[list[DetectionEvent], dict[str, Any]]
) -> None:
    events, expected = stream
    finals = run_both(events, random.Random(200 + seed), random.Random(300 + seed))
    assert {k: comparable(finals[k]) for k in expected} == expected
