"""Typed shapes of the Avro records, as fastavro reads and writes them.

These mirror the latest ``.avsc`` files field for field; a unit test keeps them in
step. Times are integers in milliseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

from typing import Literal, TypedDict

MaskState = Literal["NOT_APPLICABLE", "MASKED", "UNMASKED", "UNKNOWN"]
ScopeLevel = Literal["CAMERA", "KELURAHAN", "KECAMATAN", "CITY"]
WindowKind = Literal["TUMBLING", "ROLLING"]
CameraState = Literal["ONLINE", "OFFLINE", "FROZEN", "RECONNECTING", "INACTIVE"]
AlertState = Literal["FIRING", "RESOLVED"]


class Frame(TypedDict):
    camera_id: str
    frame_seq: int
    captured_at_ms: int
    published_at_ms: int
    width_px: int
    height_px: int
    content_type: str
    image: bytes


class Region(TypedDict):
    city: str
    kecamatan: str
    kelurahan: str


class Counts(TypedDict):
    people: int
    vehicles: dict[str, int]
    faces: int
    masked: int
    unmasked: int
    distancing_violators: int


class Detection(TypedDict):
    class_name: str
    score: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    mask_state: MaskState
    violation: bool


class DetectionEvent(TypedDict):
    event_id: str
    camera_id: str
    region: Region
    frame_seq: int
    captured_at_ms: int
    processed_at_ms: int
    width_px: int
    height_px: int
    model_versions: dict[str, str]
    calibrated: bool
    counts: Counts
    detections: list[Detection]


class WindowAggregate(TypedDict):
    scope_level: ScopeLevel
    scope_id: str
    region: Region
    window_kind: WindowKind
    window_start_ms: int
    window_end_ms: int
    revision: int
    is_final: bool
    updated_at_ms: int
    frames: int
    people_sum: int
    people_max: int
    vehicles_sum: dict[str, int]
    faces_sum: int
    masked_sum: int
    unmasked_sum: int
    violators_sum: int
    uncalibrated_frames: int
    first_captured_at_ms: int
    last_captured_at_ms: int


class CameraStatus(TypedDict):
    camera_id: str
    state: CameraState
    changed_at_ms: int
    reason: str | None
    last_frame_at_ms: int | None


class Alert(TypedDict):
    alert_id: str
    rule_id: str
    scope_level: ScopeLevel
    scope_id: str
    state: AlertState
    metric: str
    value: float
    threshold: float
    fired_at_ms: int
    resolved_at_ms: int | None
    message: str


class DeadLetter(TypedDict):
    service: str
    source_topic: str
    source_partition: int
    source_offset: int
    error_type: str
    reason: str
    failed_at_ms: int
    original_key: bytes | None
    original_value: bytes | None


class MobilityWindow(TypedDict):
    scope_level: ScopeLevel
    scope_id: str
    region: Region
    window_kind: WindowKind
    window_start_ms: int
    window_end_ms: int
    revision: int
    is_final: bool
    frames: int
    people_avg: float
    people_max: int
    vehicles_avg: dict[str, float]
    vehicles_total: dict[str, int]
    vehicles_avg_all: float


class ComplianceWindow(TypedDict):
    scope_level: ScopeLevel
    scope_id: str
    region: Region
    window_kind: WindowKind
    window_start_ms: int
    window_end_ms: int
    revision: int
    is_final: bool
    frames: int
    faces: int
    masked: int
    unmasked: int
    compliance_ratio: float | None
    people: int
    violators: int
    violation_ratio: float | None
    uncalibrated_share: float


RECORD_SHAPES: dict[str, type] = {
    "frame": Frame,
    "detection_event": DetectionEvent,
    "window_aggregate": WindowAggregate,
    "camera_status": CameraStatus,
    "alert": Alert,
    "dead_letter": DeadLetter,
    "mobility": MobilityWindow,
    "compliance": ComplianceWindow,
}
