"""Window arithmetic: scopes, window alignment, and the running totals of a window.

A scope is what a window aggregates over: one camera, or one region at the
kelurahan, kecamatan or city level. Its id is the camera id, or the region's path
(``city``, ``city/kecamatan``, ``city/kecamatan/kelurahan``) so that two kelurahan
with the same name in different kecamatan stay apart. Every window value here is
plain JSON, ready for a faust table's changelog.
"""

from __future__ import annotations

from typing import NamedTuple

from schemas.records import (
    DetectionEvent,
    Region,
    ScopeLevel,
    WindowAggregate,
    WindowKind,
)


class Scope(NamedTuple):
    """What a window aggregates over."""

    level: ScopeLevel
    scope_id: str
    region: Region

    @property
    def name(self) -> str:
        """``LEVEL:id``, the scope part of every key."""
        return f"{self.level}:{self.scope_id}"


def event_scopes(event: DetectionEvent) -> tuple[Scope, Scope, Scope, Scope]:
    """The camera of an event and the three regions above it, finest first."""
    region = event["region"]
    city, kecamatan, kelurahan = (
        region["city"],
        region["kecamatan"],
        region["kelurahan"],
    )
    return (
        Scope("CAMERA", event["camera_id"], _region(city, kecamatan, kelurahan)),
        Scope(
            "KELURAHAN",
            f"{city}/{kecamatan}/{kelurahan}",
            _region(city, kecamatan, kelurahan),
        ),
        Scope("KECAMATAN", f"{city}/{kecamatan}", _region(city, kecamatan, "")),
        Scope("CITY", city, _region(city, "", "")),
    )


def _region(city: str, kecamatan: str, kelurahan: str) -> Region:
    return {"city": city, "kecamatan": kecamatan, "kelurahan": kelurahan}


def align_ms(time_ms: int, step_ms: int) -> int:
    """Start of the ``step_ms`` bucket that holds ``time_ms``; buckets are aligned
    to the Unix epoch, so 15-minute windows start on the quarter hour in every
    whole-hour timezone (Asia/Jakarta included)."""
    return time_ms - time_ms % step_ms


def window_key(scope_name: str, kind: WindowKind, start_ms: int) -> str:
    """Key of a window on the result topics: ``LEVEL:id:KIND:start_ms``."""
    return f"{scope_name}:{kind}:{start_ms}"


def aggregate_key(aggregate: WindowAggregate) -> str:
    """The result-topic key of an aggregate."""
    return window_key(
        f"{aggregate['scope_level']}:{aggregate['scope_id']}",
        aggregate["window_kind"],
        aggregate["window_start_ms"],
    )


def empty_aggregate(
    scope: Scope, kind: WindowKind, start_ms: int, end_ms: int
) -> WindowAggregate:
    """A window that has counted nothing yet."""
    return {
        "scope_level": scope.level,
        "scope_id": scope.scope_id,
        "region": dict(scope.region),  # type: ignore[typeddict-item]
        "window_kind": kind,
        "window_start_ms": start_ms,
        "window_end_ms": end_ms,
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
        "first_captured_at_ms": 0,
        "last_captured_at_ms": 0,
    }


def add_event(aggregate: WindowAggregate, event: DetectionEvent) -> None:
    """Count one frame's event into the aggregate, in place (no revision bump)."""
    counts = event["counts"]
    captured_at_ms = event["captured_at_ms"]
    _add_times(aggregate, captured_at_ms, captured_at_ms)
    aggregate["frames"] += 1
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


def add_aggregate(total: WindowAggregate, part: WindowAggregate) -> None:
    """Add another aggregate's totals into ``total``, in place. The peak of
    people is the busiest single frame of either."""
    if part["frames"] == 0:
        return
    _add_times(total, part["first_captured_at_ms"], part["last_captured_at_ms"])
    total["frames"] += part["frames"]
    total["people_sum"] += part["people_sum"]
    total["people_max"] = max(total["people_max"], part["people_max"])
    for vehicle, count in part["vehicles_sum"].items():
        total["vehicles_sum"][vehicle] = total["vehicles_sum"].get(vehicle, 0) + count
    total["faces_sum"] += part["faces_sum"]
    total["masked_sum"] += part["masked_sum"]
    total["unmasked_sum"] += part["unmasked_sum"]
    total["violators_sum"] += part["violators_sum"]
    total["uncalibrated_frames"] += part["uncalibrated_frames"]


def _add_times(aggregate: WindowAggregate, first_ms: int, last_ms: int) -> None:
    if aggregate["frames"] == 0:
        aggregate["first_captured_at_ms"] = first_ms
        aggregate["last_captured_at_ms"] = last_ms
        return
    aggregate["first_captured_at_ms"] = min(aggregate["first_captured_at_ms"], first_ms)
    aggregate["last_captured_at_ms"] = max(aggregate["last_captured_at_ms"], last_ms)
