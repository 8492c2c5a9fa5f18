"""Camera and region windows on event time, checked against windows computed
independently from the raw event list.

The two stages run here over plain dicts in place of faust tables, with the
repartition topic simulated by lists per partition; the integration tests run
the same logic inside the real faust app.
"""

from __future__ import annotations

import copy
import random
import zlib
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pytest

from schemas.records import DetectionEvent, WindowAggregate
from stream_apps.camera_windows import (
    CameraOutputs,
    CameraWindows,
    PartialMessage,
    WatermarkMessage,
)
from stream_apps.region_windows import RegionWindows
from stream_apps.results import compliance_of, mobility_of
from stream_apps.tally import aggregate_key, align_ms
from stream_apps.window_settings import WindowSettings
from tests.window_streams import (
    GRACE_MS,
    HOP_MS,
    MINUTE_MS,
    NOW_MS,
    REGIONS,
    SIZE_MS,
    T0,
    comparable,
    expected_windows,
    flush_events,
    make_event,
    random_stream,
)


def settings(partitions: int, *, rolling: bool = True) -> WindowSettings:
    return WindowSettings(
        size_ms=SIZE_MS,
        hop_ms=HOP_MS,
        grace_ms=GRACE_MS,
        rolling=rolling,
        heartbeat_ms=10_000,
        idle_ms=3_600_000,
        future_tolerance_ms=600_000,
        source_partitions=partitions,
    )


def partition_of(key: str, partitions: int) -> int:
    """Cameras round-robin, so that no partition is idle; region keys hashed."""
    if key in REGIONS:
        return sorted(REGIONS).index(key) % partitions
    return zlib.crc32(key.encode()) % partitions


class Pipeline:
    """Both stages over dicts; the repartition topic is one FIFO per partition.
    Offsets count the messages each stage has read from each partition."""

    def __init__(self, partitions: int, rng: random.Random, rolling: bool = True):
        self.partitions = partitions
        self.settings = settings(partitions, rolling=rolling)
        self.camera_store: dict[str, Any] = {}
        self.region_store: dict[str, Any] = {}
        self.cameras = CameraWindows(self.settings, self.camera_store)
        self.regions = RegionWindows(self.settings, self.region_store)
        self.queues: list[list[tuple[str, Any]]] = [[] for _ in range(partitions)]
        self.event_offsets = [0] * partitions
        self.region_offsets = [0] * partitions
        self.latest: dict[str, WindowAggregate] = {}
        self.published: list[WindowAggregate] = []
        self.outcomes: dict[str, list[str]] = defaultdict(list)
        self.late_partials = 0
        self.rng = rng

    def feed(self, event: DetectionEvent, offset: int | None = None) -> CameraOutputs:
        """Count one event; ``offset`` (default: the next one) lets a test
        read a partition again from an earlier offset."""
        partition = partition_of(event["camera_id"], self.partitions)
        if offset is None:
            offset = self.event_offsets[partition]
        self.event_offsets[partition] = offset + 1
        out = self.cameras.on_event(partition, offset, event, NOW_MS)
        self.outcomes[out.outcome].append(event["event_id"])
        self._publish(out.windows)
        for key, partial in out.partials:
            self.queues[partition_of(key, self.partitions)].append((key, partial))
        self.cameras.delivered(partition, out.outbox)
        if out.watermark is not None:
            for queue in self.queues:
                queue.append(("__watermark__", out.watermark))
        # The region stage lags behind by a random amount, per partition.
        for queue_index in range(self.partitions):
            self.drain(queue_index, self.rng.randint(0, 3))
        return out

    def drain(self, partition: int, limit: int | None = None) -> None:
        queue = self.queues[partition]
        count = len(queue) if limit is None else min(limit, len(queue))
        for _ in range(count):
            key, message = queue.pop(0)
            offset = self.region_offsets[partition]
            self.region_offsets[partition] += 1
            if message["type"] == "watermark":
                out = self.regions.on_watermark(partition, offset, message, NOW_MS)
            else:
                out = self.regions.on_partial(partition, offset, key, message, NOW_MS)
            self.late_partials += len(out.late)
            self._publish(out.windows)
            self.regions.delivered(partition, out.outbox)

    def drain_all(self) -> None:
        for partition in range(self.partitions):
            self.drain(partition)

    def _publish(self, windows: Iterable[WindowAggregate]) -> None:
        for window in windows:
            key = aggregate_key(window)
            current = self.latest.get(key)
            if current is not None and current["is_final"]:
                # An outbox sent again after a restart repeats the final.
                assert window == current, f"{key} changed after final"
                continue
            assert current is None or window["revision"] > current["revision"], key
            self.latest[key] = copy.deepcopy(window)
            self.published.append(window)

    def finals(self) -> dict[str, WindowAggregate]:
        return {k: w for k, w in self.latest.items() if w["is_final"]}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("partitions", [1, 3])
def test_random_stream_gives_the_independently_computed_windows(
    seed: int, partitions: int
) -> None:
    rng = random.Random(seed)
    events = random_stream(rng, minutes=75)
    pipeline = Pipeline(partitions, rng)
    for event in events:
        pipeline.feed(event)
    end_ms = max(e["captured_at_ms"] for e in events)
    flush_at_ms = align_ms(end_ms, SIZE_MS) + 2 * SIZE_MS + GRACE_MS
    for event in flush_events(rng, flush_at_ms):
        pipeline.feed(event)
    pipeline.drain_all()

    assert pipeline.outcomes["late"] == []
    assert len(pipeline.outcomes["duplicate"]) == len(events) - len(
        {e["event_id"] for e in events}
    )
    expected = expected_windows(events, flush_at_ms - GRACE_MS)
    finals = pipeline.finals()
    got = {key: comparable(window) for key, window in finals.items()}
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key] == expected[key], key
    levels = {window["scope_level"] for window in finals.values()}
    assert levels == {"CAMERA", "KELURAHAN", "KECAMATAN", "CITY"}
    assert pipeline.late_partials == 0


def test_region_results_do_not_depend_on_partitioning() -> None:
    rng = random.Random(7)
    events = random_stream(rng, minutes=40)
    flush = flush_events(rng, T0 + 120 * MINUTE_MS)
    finals = []
    for partitions in (1, 2, 4):
        pipeline = Pipeline(partitions, random.Random(partitions))
        for event in [*events, *flush]:
            pipeline.feed(copy.deepcopy(event))
        pipeline.drain_all()
        finals.append({key: comparable(w) for key, w in pipeline.finals().items()})
    assert finals[0] == finals[1] == finals[2]


def test_restart_from_a_store_snapshot_gives_the_same_finals() -> None:
    """Replaying from an earlier offset over the state saved at a later point
    (what at-least-once delivery does after a crash) changes nothing."""
    rng = random.Random(11)
    events = random_stream(rng, minutes=50)
    events += flush_events(rng, T0 + 120 * MINUTE_MS)
    reference = Pipeline(2, random.Random(0))
    for event in events:
        reference.feed(event)
    reference.drain_all()

    crashed = Pipeline(2, random.Random(0))
    cut = len(events) // 2
    for event in events[:cut]:
        crashed.feed(event)
    crashed.drain_all()
    # The consumer had committed only up to 40 events before the cut: those
    # events come again, at the offsets they had.
    offsets = [0, 0]
    replay_offsets = []
    for event in events:
        partition = partition_of(event["camera_id"], 2)
        replay_offsets.append(offsets[partition])
        offsets[partition] += 1
    for event, offset in zip(
        events[cut - 40 :], replay_offsets[cut - 40 :], strict=True
    ):
        crashed.feed(event, offset)
    crashed.drain_all()
    assert {k: comparable(w) for k, w in crashed.finals().items()} == {
        k: comparable(w) for k, w in reference.finals().items()
    }
    assert len(crashed.outcomes["replayed"]) == 40


def test_events_later_than_the_grace_period_are_late_and_not_counted() -> None:
    rng = random.Random(5)
    pipeline = Pipeline(1, rng)
    pipeline.feed(make_event("a", "cam-a", T0 + 1_000, rng))
    pipeline.feed(make_event("b", "cam-a", T0 + 30 * MINUTE_MS, rng))
    # Minute 0 ended 29 minutes before the watermark: past the 5-minute grace.
    out = pipeline.feed(make_event("c", "cam-a", T0 + 2_000, rng))
    assert out.outcome == "late"
    # Minute 26 ends at 27, less than the grace before the watermark: counted.
    out = pipeline.feed(make_event("d", "cam-a", T0 + 26 * MINUTE_MS, rng))
    assert out.outcome == "counted"
    final = pipeline.latest[f"CAMERA:cam-a:TUMBLING:{T0}"]
    assert final["is_final"] and final["frames"] == 1


def test_capture_times_far_in_the_future_are_refused() -> None:
    rng = random.Random(5)
    pipeline = Pipeline(1, rng)
    out = pipeline.feed(make_event("x", "cam-a", NOW_MS + 3_600_000, rng))
    assert out.outcome == "future"
    assert pipeline.camera_store == {}


def test_a_window_is_updated_on_each_event_and_final_once() -> None:
    rng = random.Random(9)
    pipeline = Pipeline(1, rng)
    for index in range(3):
        pipeline.feed(make_event(f"e{index}", "cam-a", T0 + index * 1000, rng))
    key = f"CAMERA:cam-a:TUMBLING:{T0}"
    assert pipeline.latest[key]["revision"] == 3
    assert not pipeline.latest[key]["is_final"]
    pipeline.feed(make_event("later", "cam-a", T0 + SIZE_MS + GRACE_MS, rng))
    assert pipeline.latest[key]["is_final"]
    assert pipeline.latest[key]["revision"] == 4
    rolling = [
        w
        for w in pipeline.published
        if w["window_kind"] == "ROLLING" and w["scope_level"] == "CAMERA"
    ]
    assert rolling and all(w["is_final"] and w["frames"] == 3 for w in rolling)


def test_state_is_dropped_once_windows_close() -> None:
    """Faust's own windowed tables expire state on a timer of their own; here
    nothing outlives its last window, however long the stream runs."""
    rng = random.Random(3)
    pipeline = Pipeline(2, rng)
    sizes = []
    for hour in range(6):
        for event in random_stream(rng, minutes=60, duplicate_share=0):
            event["event_id"] = f"h{hour}-{event['event_id']}"
            event["captured_at_ms"] += hour * 3_600_000
            pipeline.feed(event)
        sizes.append(len(pipeline.camera_store) + len(pipeline.region_store))
    assert max(sizes[2:]) < 1.5 * min(sizes[2:]), sizes


def test_idle_source_partition_stops_holding_region_windows() -> None:
    rng = random.Random(1)
    store: dict[str, Any] = {}
    regions = RegionWindows(settings(2), store)
    cameras = CameraWindows(settings(2), {})
    out = cameras.on_event(0, 0, make_event("a", "cam-a", T0 + 1000, rng), NOW_MS)
    later = cameras.on_event(
        0, 1, make_event("b", "cam-a", T0 + SIZE_MS + GRACE_MS, rng), NOW_MS
    )
    messages: list[tuple[str, PartialMessage | WatermarkMessage]] = [
        *out.partials,
        *later.partials,
    ]
    watermark = later.watermark
    assert watermark is not None
    offset = 0
    for key, message in messages:
        if key.startswith("CITY:") and message["type"] == "partial":
            regions.on_partial(0, offset, key, message, NOW_MS)
            offset += 1
    # Partition 1 has said nothing: the city window waits for it...
    assert regions.on_watermark(0, offset, watermark, NOW_MS + 1000).windows == []
    # ...until it has been silent for longer than idle_ms.
    out_idle = regions.on_watermark(0, offset + 1, watermark, NOW_MS + 3_600_001)
    [final] = [w for w in out_idle.windows if w["window_kind"] == "TUMBLING"]
    assert final["is_final"] and final["scope_level"] == "CITY"
    assert final["frames"] == 1


def test_result_views_compute_averages_and_ratios() -> None:
    rng = random.Random(2)
    pipeline = Pipeline(1, rng)
    first = make_event("a", "cam-a", T0 + 1000, rng)
    first["counts"].update(
        {"people": 4, "faces": 4, "masked": 3, "unmasked": 1, "distancing_violators": 2}
    )
    first["counts"]["vehicles"] = {"car": 2}
    second = make_event("b", "cam-a", T0 + 2000, rng)
    second["counts"].update(
        {"people": 0, "faces": 0, "masked": 0, "unmasked": 0, "distancing_violators": 0}
    )
    second["counts"]["vehicles"] = {"car": 1, "bus": 1}
    second["calibrated"], first["calibrated"] = True, False
    pipeline.feed(first)
    pipeline.feed(second)
    window = pipeline.latest[f"CAMERA:cam-a:TUMBLING:{T0}"]
    mobility = mobility_of(window)
    assert mobility["people_avg"] == 2.0
    assert mobility["vehicles_avg"] == {"car": 1.5, "bus": 0.5}
    assert mobility["vehicles_avg_all"] == 2.0
    compliance = compliance_of(window)
    assert compliance["compliance_ratio"] == 0.75
    assert compliance["violation_ratio"] == 0.5
    assert compliance["uncalibrated_share"] == 0.5
    empty = dict(window, frames=0, people_sum=0, masked_sum=0, unmasked_sum=0)
    assert compliance_of(empty)["compliance_ratio"] is None  # type: ignore[arg-type]
    assert compliance_of(empty)["violation_ratio"] is None  # type: ignore[arg-type]


def test_settings_refuse_a_hop_that_does_not_divide_the_window() -> None:
    with pytest.raises(ValueError, match="multiple of the hop"):
        WindowSettings(
            size_ms=SIZE_MS,
            hop_ms=7 * MINUTE_MS,
            grace_ms=0,
            rolling=True,
            heartbeat_ms=1,
            idle_ms=1,
            future_tolerance_ms=0,
            source_partitions=1,
        )


def test_quiet_partition_forwards_its_region_shares_once() -> None:
    """Region windows catch up without a next event: after a heartbeat of
    quiet, the changed shares are forwarded, each revision once."""
    rng = random.Random(3)
    cameras = CameraWindows(settings(1), {})
    region_stage = RegionWindows(settings(1), {})
    camera = sorted(REGIONS)[0]
    now_ms = T0 + 1_000
    for index in range(3):
        # Within one minute and one heartbeat: no partial is forwarded yet.
        out = cameras.on_event(
            0, index, make_event(f"q{index}", camera, T0 + index * 1000, rng), now_ms
        )
        cameras.delivered(0, out.outbox)
    assert cameras.idle_partials(0, now_ms + 5_000) == []  # not quiet long enough
    shares = cameras.idle_partials(0, now_ms + 10_000)
    assert {key.split(":")[0] for key, _ in shares} == {
        "KELURAHAN",
        "KECAMATAN",
        "CITY",
    }
    assert all(share["aggregate"]["frames"] == 3 for _, share in shares)
    assert cameras.idle_partials(0, now_ms + 20_000) == []  # already forwarded
    totals = {}
    for offset, (key, share) in enumerate(shares + shares):  # and a repeat
        result = region_stage.on_partial(0, offset, key, share, now_ms + 10_000)
        for window in result.windows:
            totals[key] = window["frames"]
    assert set(totals.values()) == {3}
