"""Draw what the models found, as on the city's monitoring screens: green boxes
for people keeping their distance, red for violators, faces blurred and marked
mask / no mask. Heads are blurred too, so faces the detector missed stay
unrecognisable."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from inference.analysis import FrameAnalysis
from inference.detections import PERSON

GREEN = (60, 200, 60)
RED = (40, 40, 230)
AMBER = (0, 190, 255)

# The top part of every person's box is blurred as well as detected faces: a
# standing adult's head fills roughly the top fifth of the box.
_HEAD_FRACTION = 0.2


def _blur(image: npt.NDArray[np.uint8], x0: int, y0: int, x1: int, y1: int) -> None:
    region = image[y0:y1, x0:x1]
    if region.size == 0:
        return
    kernel = max(3, (min(region.shape[:2]) // 3) | 1)
    image[y0:y1, x0:x1] = cv2.GaussianBlur(region, (kernel, kernel), 0)


def annotate(
    image_bgr: npt.NDArray[np.uint8], analysis: FrameAnalysis
) -> npt.NDArray[np.uint8]:
    """A copy of the frame with heads blurred and every object boxed."""
    out = image_bgr.copy()
    objects = analysis.objects
    boxes = objects.boxes_xyxy_px.round().astype(int).tolist()
    face_boxes = analysis.faces.boxes_xyxy_px.round().astype(int).tolist()
    for x0, y0, x1, y1 in face_boxes:
        _blur(out, x0, y0, x1, y1)
    for (x0, y0, x1, y1), name in zip(boxes, objects.class_names, strict=True):
        if name == PERSON:
            _blur(out, x0, y0, x1, y0 + max(1, round((y1 - y0) * _HEAD_FRACTION)))
    for (x0, y0, x1, y1), masked in zip(
        face_boxes, analysis.masked.tolist(), strict=True
    ):
        colour = GREEN if masked else RED
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 1)
        cv2.putText(
            out,
            "mask" if masked else "no mask",
            (x0, max(12, y0 - 3)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            colour,
            1,
            cv2.LINE_AA,
        )
    for (x0, y0, x1, y1), name, score, violation in zip(
        boxes,
        objects.class_names,
        objects.scores.tolist(),
        analysis.violations.tolist(),
        strict=True,
    ):
        colour = (RED if violation else GREEN) if name == PERSON else AMBER
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
        cv2.putText(
            out,
            f"{name} {score:.2f}",
            (x0, max(12, y0 - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            colour,
            1,
            cv2.LINE_AA,
        )
    return out
