"""Records for tests, shaped like the Avro contracts."""

from __future__ import annotations

from schemas.records import DetectionEvent


def detection_event(
    event_id: str,
    captured_at_ms: int,
    people: int,
    *,
    camera: str = "cam-1",
    vehicles: dict[str, int] | None = None,
) -> DetectionEvent:
    """A detection event of one frame with ``people`` people and no detections
    listed."""
    return {
        "event_id": event_id,
        "camera_id": camera,
        "region": {"city": "Jakarta", "kecamatan": "Gambir", "kelurahan": "Gambir"},
        "frame_seq": 0,
        "captured_at_ms": captured_at_ms,
        "processed_at_ms": captured_at_ms + 100,
        "width_px": 768,
        "height_px": 576,
        "model_versions": {"people": "test"},
        "calibrated": False,
        "counts": {
            "people": people,
            "vehicles": vehicles or {},
            "faces": 0,
            "masked": 0,
            "unmasked": 0,
            "distancing_violators": 0,
        },
        "detections": [],
    }
