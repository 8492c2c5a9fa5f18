"""``pantau detect``: the consumers' analysis on local images and videos."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from inference.analysis import FrameAnalyzer
from inference.annotate import annotate
from inference.events import build_detection_event
from schemas.records import DetectionEvent, Frame, Region

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
_LOCAL_REGION: Region = {"city": "", "kecamatan": "", "kelurahan": ""}


class LocalInputError(ValueError):
    """A file that is neither a readable image nor a readable video."""


def frames_of(path: Path, every: int) -> Iterator[tuple[str, npt.NDArray[np.uint8]]]:
    """(label, image) for an image file, or every ``every``-th frame of a video."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise LocalInputError(f"{path}: not a readable image")
        yield path.name, np.asarray(image, np.uint8)
        return
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise LocalInputError(
            f"{path}: not a readable image or video; expected one of "
            f"{', '.join(sorted(IMAGE_SUFFIXES))} or a video OpenCV can open"
        )
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            if index % every == 0:
                yield f"{path.name}#{index}", np.asarray(image, np.uint8)
            index += 1
    finally:
        capture.release()


def detect_files(
    analyzer: FrameAnalyzer,
    paths: list[Path],
    *,
    every: int,
    annotate_dir: Path | None,
) -> Iterator[tuple[str, DetectionEvent]]:
    """One detection event per image or sampled video frame, built exactly as
    the inference consumer builds it."""
    if annotate_dir is not None:
        annotate_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        for seq, (label, image) in enumerate(frames_of(path, every)):
            height, width = image.shape[:2]
            now_ms = int(time.time() * 1000)
            frame: Frame = {
                "camera_id": "local",
                "frame_seq": seq,
                "captured_at_ms": now_ms,
                "published_at_ms": now_ms,
                "width_px": width,
                "height_px": height,
                "content_type": "image/jpeg",
                "image": b"",
            }
            analysis = analyzer.analyze(image, None)
            event = build_detection_event(
                frame, _LOCAL_REGION, analysis, int(time.time() * 1000)
            )
            if annotate_dir is not None:
                target = annotate_dir / f"{label.replace('#', '_')}.jpg"
                cv2.imwrite(str(target), annotate(image, analysis))
            yield label, event


def describe(label: str, event: DetectionEvent, as_json: bool) -> str:
    """One printable result."""
    if as_json:
        return json.dumps({"input": label, **event}, sort_keys=True)
    counts = event["counts"]
    vehicles = ", ".join(f"{k}={v}" for k, v in sorted(counts["vehicles"].items()))
    lines = [
        f"{label}: people={counts['people']} vehicles={{{vehicles}}} "
        f"violators={counts['distancing_violators']} faces={counts['faces']} "
        f"masked={counts['masked']} unmasked={counts['unmasked']} "
        f"calibrated={str(event['calibrated']).lower()}"
    ]
    for item in event["detections"]:
        lines.append(
            f"  {item['class_name']:<10} score={item['score']:.2f} "
            f"box=({item['x_min']:.3f}, {item['y_min']:.3f}, "
            f"{item['x_max']:.3f}, {item['y_max']:.3f})"
            + ("  VIOLATION" if item["violation"] else "")
            + (f"  {item['mask_state']}" if item["class_name"] == "face" else "")
        )
    return "\n".join(lines)
