"""Random detection-event streams for window tests, and the windows they must
give, computed straight from the event list without the window code."""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from typing import Any

from schemas.records import DetectionEvent, WindowAggregate
from stream_apps.tally import event_scopes
from tests.records import detection_event

MINUTE_MS = 60_000
SIZE_MS = 15 * MINUTE_MS
HOP_MS = MINUTE_MS
GRACE_MS = 5 * MINUTE_MS
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, 07:00 WIB
NOW_MS = T0 + 30 * 86_400_000  # wall clock well after every capture time

REGIONS = {
    "cam-a": ("Jakarta", "Gambir", "Gambir"),
    "cam-b": ("Jakarta", "Gambir", "Cideng"),
    "cam-c": ("Jakarta", "Menteng", "Menteng"),
    "cam-d": ("Jakarta", "Menteng", "Gondangdia"),
    "cam-e": ("Jakarta", "Tanah Abang", "Gelora"),
}


def make_event(
    event_id: str, camera: str, captured_at_ms: int, rng: random.Random
) -> DetectionEvent:
    city, kecamatan, kelurahan = REGIONS[camera]
    event = detection_event(
        event_id,
        captured_at_ms,
        rng.randint(0, 9),
        camera=camera,
        vehicles={"car": rng.randint(0, 4), "motorcycle": rng.randint(0, 6)},
    )
    event["region"] = {"city": city, "kecamatan": kecamatan, "kelurahan": kelurahan}
    faces = rng.randint(0, 5)
    masked = rng.randint(0, faces)
    event["counts"]["faces"] = faces
    event["counts"]["masked"] = masked
    event["counts"]["unmasked"] = faces - masked
    event["counts"]["distancing_violators"] = rng.randint(0, event["counts"]["people"])
    event["calibrated"] = rng.random() < 0.5
    return event


def expected_windows(
    events: list[DetectionEvent], closed_before_ms: int
) -> dict[str, dict[str, Any]]:
    """Every window that ends by ``closed_before_ms``, summed straight from the
    distinct events: what the stages must publish as final."""
    distinct = {event["event_id"]: event for event in events}
    buckets: dict[str, list[DetectionEvent]] = defaultdict(list)
    for event in distinct.values():
        captured_at_ms = event["captured_at_ms"]
        for scope in event_scopes(event):
            tumbling = captured_at_ms - captured_at_ms % SIZE_MS
            buckets[f"{scope.name}:TUMBLING:{tumbling}"].append(event)
            first = captured_at_ms - captured_at_ms % HOP_MS - SIZE_MS + HOP_MS
            for start in range(first, captured_at_ms + 1, HOP_MS):
                buckets[f"{scope.name}:ROLLING:{start}"].append(event)
    expected = {}
    for key, members in buckets.items():
        start_ms = int(key.rsplit(":", 1)[1])
        if start_ms + SIZE_MS > closed_before_ms:
            continue
        vehicles: dict[str, int] = defaultdict(int)
        for member in members:
            for name, count in member["counts"]["vehicles"].items():
                vehicles[name] += count
        expected[key] = {
            "frames": len(members),
            "people_sum": sum(m["counts"]["people"] for m in members),
            "people_max": max(m["counts"]["people"] for m in members),
            "vehicles_sum": dict(vehicles),
            "faces_sum": sum(m["counts"]["faces"] for m in members),
            "masked_sum": sum(m["counts"]["masked"] for m in members),
            "unmasked_sum": sum(m["counts"]["unmasked"] for m in members),
            "violators_sum": sum(m["counts"]["distancing_violators"] for m in members),
            "uncalibrated_frames": sum(not m["calibrated"] for m in members),
            "first_captured_at_ms": min(m["captured_at_ms"] for m in members),
            "last_captured_at_ms": max(m["captured_at_ms"] for m in members),
        }
    return expected


def comparable(window: WindowAggregate) -> dict[str, Any]:
    fields = (
        "frames",
        "people_sum",
        "people_max",
        "vehicles_sum",
        "faces_sum",
        "masked_sum",
        "unmasked_sum",
        "violators_sum",
        "uncalibrated_frames",
        "first_captured_at_ms",
        "last_captured_at_ms",
    )
    return {name: window[name] for name in fields}  # type: ignore[literal-required]


def random_stream(
    rng: random.Random, minutes: int, *, duplicate_share: float = 0.1
) -> list[DetectionEvent]:
    """Events from every camera, out of order by less than the grace period
    less one hop (so none is late), with redeliveries of earlier events."""
    events: list[DetectionEvent] = []
    base_ms = T0 + 7 * MINUTE_MS + 1234
    serial = 0
    while base_ms < T0 + minutes * MINUTE_MS:
        camera = rng.choice(sorted(REGIONS))
        captured_at_ms = base_ms - rng.randint(0, GRACE_MS - HOP_MS - 1)
        serial += 1
        events.append(make_event(f"e{serial}", camera, captured_at_ms, rng))
        if events and rng.random() < duplicate_share:
            events.append(copy.deepcopy(rng.choice(events[-50:])))
        base_ms += rng.randint(0, 9_000)
    return events


def flush_events(rng: random.Random, at_ms: int) -> list[DetectionEvent]:
    """One event per camera far enough on that every earlier window closes."""
    return [
        make_event(f"flush-{camera}", camera, at_ms, rng) for camera in sorted(REGIONS)
    ]
