"""The values alert rules watch, read from window aggregates and camera states.

- ``compliance_ratio``: masked faces / faces judged (masked + unmasked);
- ``people_density``: people per sampled frame;
- ``vehicles``: vehicles (every class) per sampled frame;
- ``distancing_violation_ratio``: people closer than the distancing threshold
  / people;
- ``camera_offline``: 1 while a camera is OFFLINE or FROZEN, else 0.

A window too thin to judge (fewer frames than the rule's ``min_frames``, or no
faces or people for a ratio) gives no value rather than a misleading one.
"""

from __future__ import annotations

from pantau.config_alerting import AlertMetric
from schemas.records import CameraStatus, WindowAggregate

WINDOW_METRICS: tuple[AlertMetric, ...] = (
    "compliance_ratio",
    "people_density",
    "vehicles",
    "distancing_violation_ratio",
)
OFFLINE_STATES = frozenset({"OFFLINE", "FROZEN"})


def window_value(
    metric: AlertMetric, window: WindowAggregate, min_frames: int
) -> float | None:
    """The metric over one window, or None when the window cannot tell."""
    frames = window["frames"]
    if frames < max(1, min_frames):
        return None
    if metric == "people_density":
        return window["people_sum"] / frames
    if metric == "vehicles":
        return sum(window["vehicles_sum"].values()) / frames
    if metric == "compliance_ratio":
        judged = window["masked_sum"] + window["unmasked_sum"]
        return window["masked_sum"] / judged if judged else None
    if metric == "distancing_violation_ratio":
        people = window["people_sum"]
        return window["violators_sum"] / people if people else None
    raise ValueError(f"expected a window metric {WINDOW_METRICS}, got {metric!r}")


def offline_value(status: CameraStatus) -> float:
    """1.0 while the camera is offline or frozen, else 0.0."""
    return 1.0 if status["state"] in OFFLINE_STATES else 0.0
