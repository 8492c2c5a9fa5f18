"""The result records downstream systems read: mobility and compliance views of a
window aggregate, with the averages and ratios worked out."""

from __future__ import annotations

from schemas.records import ComplianceWindow, MobilityWindow, WindowAggregate


def mobility_of(aggregate: WindowAggregate) -> MobilityWindow:
    """People and vehicles of a window, per frame and in total."""
    frames = aggregate["frames"]
    vehicles = aggregate["vehicles_sum"]
    return {
        **_window_fields(aggregate),  # type: ignore[typeddict-item]
        "people_avg": _ratio(aggregate["people_sum"], frames) or 0.0,
        "people_max": aggregate["people_max"],
        "vehicles_avg": {
            name: _ratio(count, frames) or 0.0 for name, count in vehicles.items()
        },
        "vehicles_total": dict(vehicles),
        "vehicles_avg_all": _ratio(sum(vehicles.values()), frames) or 0.0,
    }


def compliance_of(aggregate: WindowAggregate) -> ComplianceWindow:
    """Mask compliance and distancing of a window; ratios are None when there
    was nothing to divide by."""
    masked, unmasked = aggregate["masked_sum"], aggregate["unmasked_sum"]
    return {
        **_window_fields(aggregate),  # type: ignore[typeddict-item]
        "faces": aggregate["faces_sum"],
        "masked": masked,
        "unmasked": unmasked,
        "compliance_ratio": _ratio(masked, masked + unmasked),
        "people": aggregate["people_sum"],
        "violators": aggregate["violators_sum"],
        "violation_ratio": _ratio(aggregate["violators_sum"], aggregate["people_sum"]),
        "uncalibrated_share": _ratio(
            aggregate["uncalibrated_frames"], aggregate["frames"]
        )
        or 0.0,
    }


def _window_fields(aggregate: WindowAggregate) -> dict[str, object]:
    return {
        "scope_level": aggregate["scope_level"],
        "scope_id": aggregate["scope_id"],
        "region": aggregate["region"],
        "window_kind": aggregate["window_kind"],
        "window_start_ms": aggregate["window_start_ms"],
        "window_end_ms": aggregate["window_end_ms"],
        "revision": aggregate["revision"],
        "is_final": aggregate["is_final"],
        "frames": aggregate["frames"],
    }


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator
