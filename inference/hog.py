"""OpenCV's built-in HOG + linear SVM pedestrian detector.

It needs no weight files and runs anywhere OpenCV does, which makes it the
walking-skeleton detector. It finds upright, whole people only.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from inference.detections import PERSON, FrameDetections

# SVM margins above this count as people; the margin is squashed into a [0, 1)
# score so it can share a field with probabilistic detectors.
_MIN_MARGIN = 0.3
_NMS_IOU = 0.45


class HogPeopleDetector:
    """Finds people with HOG features; thread-compatible, not thread-safe."""

    name = "people"

    def __init__(self, max_side_px: int = 800) -> None:
        self._hog = cv2.HOGDescriptor()
        people_svm = np.asarray(
            cv2.HOGDescriptor.getDefaultPeopleDetector(), np.float32
        )
        self._hog.setSVMDetector(people_svm)
        self._max_side_px = max_side_px
        self.version = f"opencv-hog/{cv2.__version__}"

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> FrameDetections:
        """People in one BGR image; boxes in that image's pixels."""
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self._max_side_px / max(height, width))
        analysed: cv2.typing.MatLike = image_bgr
        if scale < 1.0:
            analysed = cv2.resize(
                image_bgr, (round(width * scale), round(height * scale))
            )
        rects, raw_margins = self._hog.detectMultiScale(
            analysed, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        if len(rects) == 0:
            return FrameDetections.empty((width, height))
        margins = np.asarray(raw_margins, np.float32).reshape(-1)
        keep = cv2.dnn.NMSBoxes(
            [list(map(int, r)) for r in rects], margins.tolist(), _MIN_MARGIN, _NMS_IOU
        )
        kept = np.asarray(keep, np.int64).reshape(-1)
        boxes_xywh = np.asarray(rects, np.float32)[kept] / scale
        boxes_xyxy = boxes_xywh.copy()
        boxes_xyxy[:, 2:] += boxes_xywh[:, :2]
        boxes_xyxy[:, [0, 2]] = boxes_xyxy[:, [0, 2]].clip(0, width)
        boxes_xyxy[:, [1, 3]] = boxes_xyxy[:, [1, 3]].clip(0, height)
        scores = (1.0 - np.exp(-margins[kept])).astype(np.float32)
        return FrameDetections(
            boxes_xyxy, scores, (PERSON,) * len(kept), (width, height)
        )
