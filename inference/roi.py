"""Keep only the detections that stand inside a camera's region of interest."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from inference.detections import FrameDetections


def filter_by_roi(
    detections: FrameDetections, roi_polygon_xy: Sequence[tuple[float, float]] | None
) -> FrameDetections:
    """Detections whose foot point lies inside the polygon (normalised 0..1
    image coordinates); all of them when there is no polygon."""
    if not roi_polygon_xy or len(detections) == 0:
        return detections
    width, height = detections.frame_wh
    polygon_px = (np.asarray(roi_polygon_xy, np.float32) * (width, height)).astype(
        np.float32
    )
    keep = np.array(
        [
            cv2.pointPolygonTest(polygon_px, (float(x), float(y)), False) >= 0
            for x, y in detections.foot_points_xy_px()
        ],
        dtype=bool,
    )
    return detections.select(keep)
