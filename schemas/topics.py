"""The topic catalogue: every Pantau topic, its record type and its settings.

``docs/topics.md`` describes the same topics for downstream subscribers; a test
keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class TopicSpec:
    """One topic as Pantau creates it."""

    name: str
    record_type: str
    key: str
    cleanup_policy: Literal["delete", "compact"]
    retention_ms: int | None
    summary: str
    encoding: Literal["avro", "json"] = "avro"

    def full_name(self, prefix: str = "") -> str:
        """The name on the broker, with the deployment's prefix."""
        return f"{prefix}{self.name}"


FRAMES = TopicSpec(
    name="pantau.frames",
    record_type="frame",
    key="camera id",
    cleanup_policy="delete",
    retention_ms=HOUR_MS,  # overridden by kafka.frames_retention_ms
    summary="JPEG frames sampled from cameras; short retention",
)
ANNOTATED_FRAMES = TopicSpec(
    name="pantau.annotated-frames",
    record_type="frame",
    key="camera id",
    cleanup_policy="delete",
    retention_ms=HOUR_MS,  # overridden by kafka.frames_retention_ms
    summary="frames with boxes drawn and heads blurred; short retention",
)
DETECTIONS = TopicSpec(
    name="pantau.detections",
    record_type="detection_event",
    key="camera id",
    cleanup_policy="delete",
    retention_ms=7 * DAY_MS,
    summary="one detection event per analysed frame",
)
LATE_EVENTS = TopicSpec(
    name="pantau.late-events",
    record_type="detection_event",
    key="camera id",
    cleanup_policy="delete",
    retention_ms=7 * DAY_MS,
    summary="detection events that arrived after their window closed",
)
WINDOWS = TopicSpec(
    name="pantau.windows",
    record_type="window_aggregate",
    key="'<scope_level>:<scope_id>:<window_kind>:<window_start_ms>'",
    cleanup_policy="compact",
    retention_ms=None,
    summary="running and final window aggregates; latest revision per key wins",
)
MOBILITY = TopicSpec(
    name="pantau.mobility",
    record_type="mobility",
    key="'<scope_level>:<scope_id>:<window_kind>:<window_start_ms>'",
    cleanup_policy="compact",
    retention_ms=None,
    summary="people and vehicles per window, camera and region; latest revision wins",
)
COMPLIANCE = TopicSpec(
    name="pantau.compliance",
    record_type="compliance",
    key="'<scope_level>:<scope_id>:<window_kind>:<window_start_ms>'",
    cleanup_policy="compact",
    retention_ms=None,
    summary="mask compliance and distancing per window; latest revision wins",
)
WINDOWS_REPARTITION = TopicSpec(
    name="pantau.windows-regions",
    record_type="region_partial",
    key="'<scope_level>:<scope_id>:<window_kind>:<window_start_ms>' or '__watermark__'",
    cleanup_policy="delete",
    retention_ms=DAY_MS,
    summary="internal: the windows app's re-keying from camera partitions to "
    "regions (JSON)",
    encoding="json",
)
CAMERA_STATUS = TopicSpec(
    name="pantau.camera-status",
    record_type="camera_status",
    key="camera id",
    cleanup_policy="compact",
    retention_ms=None,
    summary="current health of each camera",
)
ALERTS = TopicSpec(
    name="pantau.alerts",
    record_type="alert",
    key="'<rule_id>:<scope_level>:<scope_id>'",
    cleanup_policy="compact",
    retention_ms=None,
    summary="alert lifecycle: firing and resolved",
)
DEAD_LETTER = TopicSpec(
    name="pantau.dead-letter",
    record_type="dead_letter",
    key="the original message's key",
    cleanup_policy="delete",
    retention_ms=14 * DAY_MS,
    summary="messages a service could not process, with the reason",
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    FRAMES,
    ANNOTATED_FRAMES,
    DETECTIONS,
    LATE_EVENTS,
    WINDOWS,
    MOBILITY,
    COMPLIANCE,
    WINDOWS_REPARTITION,
    CAMERA_STATUS,
    ALERTS,
    DEAD_LETTER,
)
