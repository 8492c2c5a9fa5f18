"""Turn one frame's detections into the Avro detection event."""

from __future__ import annotations

import hashlib

from inference.analysis import FrameAnalysis
from inference.detections import FACE, PERSON
from schemas.records import (
    Counts,
    Detection,
    DetectionEvent,
    Frame,
    MaskState,
    Region,
)

VEHICLE_CLASSES = ("car", "motorcycle", "bus", "truck", "bicycle")


def detection_event_id(camera_id: str, captured_at_ms: int, frame_seq: int) -> str:
    """The same frame always gives the same id, so redeliveries can be dropped."""
    digest = hashlib.sha256(f"{camera_id}|{captured_at_ms}|{frame_seq}".encode())
    return digest.hexdigest()[:32]


def _detection(
    box_xyxy_px: list[float],
    score: float,
    class_name: str,
    frame_wh: tuple[int, int],
    *,
    mask_state: MaskState,
    violation: bool,
) -> Detection:
    """One detection with its box normalised to the frame size."""
    width, height = frame_wh
    return {
        "class_name": class_name,
        "score": round(float(score), 4),
        "x_min": box_xyxy_px[0] / width,
        "y_min": box_xyxy_px[1] / height,
        "x_max": box_xyxy_px[2] / width,
        "y_max": box_xyxy_px[3] / height,
        "mask_state": mask_state,
        "violation": violation,
    }


def build_detection_event(
    frame: Frame,
    region: Region,
    analysis: FrameAnalysis,
    processed_at_ms: int,
) -> DetectionEvent:
    """The event for one frame; boxes are normalised to the frame size."""
    detections = analysis.objects
    frame_wh = detections.frame_wh
    items = [
        _detection(
            box,
            score,
            name,
            frame_wh,
            mask_state="NOT_APPLICABLE",
            violation=bool(violation),
        )
        for box, score, name, violation in zip(
            detections.boxes_xyxy_px.tolist(),
            detections.scores.tolist(),
            detections.class_names,
            analysis.violations.tolist(),
            strict=True,
        )
    ]
    masked_flags = analysis.masked.tolist()
    items += [
        _detection(
            box,
            score,
            FACE,
            frame_wh,
            mask_state="MASKED" if masked else "UNMASKED",
            violation=False,
        )
        for box, score, masked in zip(
            analysis.faces.boxes_xyxy_px.tolist(),
            analysis.faces.scores.tolist(),
            masked_flags,
            strict=True,
        )
    ]
    vehicles = {
        name: detections.count(name)
        for name in VEHICLE_CLASSES
        if detections.count(name)
    }
    counts: Counts = {
        "people": detections.count(PERSON),
        "vehicles": vehicles,
        "faces": len(masked_flags),
        "masked": sum(masked_flags),
        "unmasked": len(masked_flags) - sum(masked_flags),
        "distancing_violators": int(analysis.violations.sum()),
    }
    return {
        "event_id": detection_event_id(
            frame["camera_id"], frame["captured_at_ms"], frame["frame_seq"]
        ),
        "camera_id": frame["camera_id"],
        "region": region,
        "frame_seq": frame["frame_seq"],
        "captured_at_ms": frame["captured_at_ms"],
        "processed_at_ms": processed_at_ms,
        "width_px": frame_wh[0],
        "height_px": frame_wh[1],
        "model_versions": analysis.model_versions,
        "calibrated": analysis.calibrated,
        "counts": counts,
        "detections": items,
    }
