"""Tumbling windows summed straight from detection events, without Kafka,
faust or ClickHouse: the undisturbed result a disturbed run must equal."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from schemas.records import DetectionEvent
from stream_apps.tally import event_scopes

WindowKey = tuple[str, str, int]  # scope level, scope id, window start (ms)

COMPARED = (
    "frames",
    "people_sum",
    "people_max",
    "vehicles_sum",
    "masked_sum",
    "unmasked_sum",
    "violators_sum",
)


def tumbling_windows(
    events: Iterable[DetectionEvent], size_ms: int
) -> dict[WindowKey, dict[str, Any]]:
    """Every tumbling window of every scope, over the distinct events."""
    distinct = {event["event_id"]: event for event in events}
    windows: dict[WindowKey, dict[str, Any]] = {}
    for event in distinct.values():
        start_ms = event["captured_at_ms"] - event["captured_at_ms"] % size_ms
        counts = event["counts"]
        for scope in event_scopes(event):
            window = windows.setdefault(
                (scope.level, scope.scope_id, start_ms),
                {
                    "frames": 0,
                    "people_sum": 0,
                    "people_max": 0,
                    "vehicles_sum": defaultdict(int),
                    "masked_sum": 0,
                    "unmasked_sum": 0,
                    "violators_sum": 0,
                },
            )
            window["frames"] += 1
            window["people_sum"] += counts["people"]
            window["people_max"] = max(window["people_max"], counts["people"])
            for name, count in counts["vehicles"].items():
                window["vehicles_sum"][name] += count
            window["masked_sum"] += counts["masked"]
            window["unmasked_sum"] += counts["unmasked"]
            window["violators_sum"] += counts["distancing_violators"]
    for window in windows.values():
        window["vehicles_sum"] = {
            name: count for name, count in window["vehicles_sum"].items() if count
        }
    return windows
