"""Event-time tumbling windows per camera, as pure functions over JSON state.

The faust app keeps one state per (camera, window) in a changelog-backed table;
the state carries the ids of the events already counted so that a redelivered
event never counts twice.
"""

from __future__ import annotations

from typing import TypedDict

from schemas.records import DetectionEvent, WindowAggregate


class WindowState(TypedDict):
    aggregate: WindowAggregate
    event_ids: list[str]


def window_start_ms(captured_at_ms: int, size_ms: int) -> int:
    """Start of the tumbling window that holds this capture time; windows are
    aligned to the Unix epoch, so 15-minute windows start on the quarter hour in
    every whole-hour timezone (Asia/Jakarta included)."""
    return captured_at_ms - captured_at_ms % size_ms


def camera_window_key(camera_id: str, start_ms: int) -> str:
    """Key of a camera window on the windows topic and in the state table."""
    return f"CAMERA:{camera_id}:{start_ms}"


def new_camera_window(event: DetectionEvent, size_ms: int) -> WindowState:
    """An empty window for the event's camera, holding the event's capture time."""
    start_ms = window_start_ms(event["captured_at_ms"], size_ms)
    region = event["region"]
    return {
        "aggregate": {
            "scope_level": "CAMERA",
            "scope_id": event["camera_id"],
            "region": {
                "city": region["city"],
                "kecamatan": region["kecamatan"],
                "kelurahan": region["kelurahan"],
            },
            "window_kind": "TUMBLING",
            "window_start_ms": start_ms,
            "window_end_ms": start_ms + size_ms,
            "revision": 0,
            "is_final": False,
            "updated_at_ms": 0,
            "frames": 0,
            "people_sum": 0,
            "people_max": 0,
            "vehicles_sum": {},
            "faces_sum": 0,
            "masked_sum": 0,
            "unmasked_sum": 0,
            "violators_sum": 0,
            "uncalibrated_frames": 0,
            "first_captured_at_ms": event["captured_at_ms"],
            "last_captured_at_ms": event["captured_at_ms"],
        },
        "event_ids": [],
    }


def apply_event(state: WindowState, event: DetectionEvent, updated_at_ms: int) -> bool:
    """Count one event into its window state, in place. Returns False (and changes
    nothing) when this event id was already counted."""
    if event["event_id"] in state["event_ids"]:
        return False
    aggregate = state["aggregate"]
    counts = event["counts"]
    state["event_ids"].append(event["event_id"])
    aggregate["frames"] += 1
    aggregate["revision"] += 1
    aggregate["updated_at_ms"] = updated_at_ms
    aggregate["people_sum"] += counts["people"]
    aggregate["people_max"] = max(aggregate["people_max"], counts["people"])
    for vehicle, count in counts["vehicles"].items():
        aggregate["vehicles_sum"][vehicle] = (
            aggregate["vehicles_sum"].get(vehicle, 0) + count
        )
    aggregate["faces_sum"] += counts["faces"]
    aggregate["masked_sum"] += counts["masked"]
    aggregate["unmasked_sum"] += counts["unmasked"]
    aggregate["violators_sum"] += counts["distancing_violators"]
    aggregate["uncalibrated_frames"] += 0 if event["calibrated"] else 1
    aggregate["first_captured_at_ms"] = min(
        aggregate["first_captured_at_ms"], event["captured_at_ms"]
    )
    aggregate["last_captured_at_ms"] = max(
        aggregate["last_captured_at_ms"], event["captured_at_ms"]
    )
    return True


class PartitionClock(TypedDict):
    """Event-time progress of one input partition: the latest capture time seen
    and the windows that are still open."""

    watermark_ms: int
    open_keys: list[str]


def new_clock() -> PartitionClock:
    """The clock of a partition that has seen nothing."""
    return {"watermark_ms": 0, "open_keys": []}


def clock_key(partition: int) -> str:
    """Key of a partition's clock in the window table."""
    return f"__clock__:{partition}"


def is_closed(window_end_ms: int, grace_ms: int, watermark_ms: int) -> bool:
    """A window closes once the partition's event time is ``grace_ms`` past its
    end: later events for it are late."""
    return window_end_ms + grace_ms <= watermark_ms


def finalize(state: WindowState, updated_at_ms: int) -> WindowAggregate:
    """Mark a window final with one more revision; returns its last aggregate."""
    aggregate = state["aggregate"]
    aggregate["is_final"] = True
    aggregate["revision"] += 1
    aggregate["updated_at_ms"] = updated_at_ms
    return aggregate
