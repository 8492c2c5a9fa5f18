"""``pantau calibrate``: check a camera's ground-plane calibration on a real
frame and draw it, so an operator can see whether the metres are right."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from inference.analysis import ground_plane
from pantau.config import CameraConfig

GRID_COLOUR = (255, 200, 0)
POINT_COLOUR = (0, 0, 255)


@dataclass(frozen=True)
class CalibrationCheck:
    """What the check found: facts to print, problems that make it fail, and
    the frame with the calibration drawn on it."""

    facts: list[str]
    problems: list[str]
    picture: npt.NDArray[np.uint8]


def check_calibration(
    camera: CameraConfig, frame_bgr: npt.NDArray[np.uint8]
) -> CalibrationCheck:
    """Check the calibration of ``camera`` against one of its frames."""
    calibration = camera.ground_calibration
    picture = frame_bgr.copy()
    if calibration is None:
        return CalibrationCheck(
            [],
            [
                f"camera '{camera.id}' has no ground_calibration; distances are "
                "estimated from box heights and events are marked uncalibrated"
            ],
            picture,
        )
    plane = ground_plane(camera)
    assert plane is not None
    height, width = frame_bgr.shape[:2]
    facts: list[str] = [f"frame {width}x{height} px"]
    problems: list[str] = []
    cal_w, cal_h = calibration.image_wh
    if abs(cal_w / cal_h - width / height) > 0.01:
        problems.append(
            f"calibration image_wh {cal_w}x{cal_h} has another aspect ratio than "
            f"the camera's frames ({width}x{height}); recalibrate on a current frame"
        )
    scale = np.array([width / cal_w, height / cal_h])
    image_points = np.asarray(calibration.image_points_xy, np.float64) * scale
    if not cv2.isContourConvex(image_points.astype(np.float32).reshape(-1, 1, 2)):
        problems.append(
            "the four image points do not form a convex quadrilateral in order; "
            "list them around the area (for example clockwise from top left)"
        )
    ground = np.asarray(calibration.ground_points_m, np.float64)
    area_m2 = 0.5 * abs(
        float(np.dot(ground[:, 0], np.roll(ground[:, 1], 1)))
        - float(np.dot(ground[:, 1], np.roll(ground[:, 0], 1)))
    )
    facts.append(f"calibrated ground area {area_m2:.1f} m2")
    condition = float(np.linalg.cond(plane.image_to_ground))
    facts.append(f"homography condition number {condition:.3g}")
    if not math.isfinite(condition) or condition > 1e8:
        problems.append(
            "the homography is nearly singular; choose points further apart"
        )
    for label, y in (
        ("near (bottom)", 0.95 * height),
        ("far (top of area)", image_points[:, 1].min()),
    ):
        pair = np.asarray([[width / 2, y], [width / 2 + 10, y]], np.float32)
        metres = plane.to_ground_m(pair, (width, height))
        per_px = float(np.linalg.norm(metres[1] - metres[0])) / 10
        facts.append(f"{label}: {per_px * 100:.1f} cm per pixel across")

    to_image = np.linalg.inv(plane.image_to_ground)
    xs = np.arange(math.floor(ground[:, 0].min()), math.ceil(ground[:, 0].max()) + 1)
    ys = np.arange(math.floor(ground[:, 1].min()), math.ceil(ground[:, 1].max()) + 1)
    for line in [[(x, ys[0]), (x, ys[-1])] for x in xs] + [
        [(xs[0], y), (xs[-1], y)] for y in ys
    ]:
        ends = cv2.perspectiveTransform(np.asarray([line], np.float64), to_image)[0]
        ends = ends / np.array([cal_w, cal_h]) * np.array([width, height])
        a, b = (tuple(int(v) for v in point) for point in ends)
        cv2.line(picture, a, b, GRID_COLOUR, 1, cv2.LINE_AA)
    for index, (x, y) in enumerate(image_points.round().astype(int).tolist()):
        cv2.circle(picture, (x, y), 6, POINT_COLOUR, 2)
        cv2.putText(
            picture,
            f"{index + 1}",
            (x + 8, y - 8),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.6,
            POINT_COLOUR,
            2,
        )
    facts.append("grid lines are 1 m apart on the ground")
    return CalibrationCheck(facts, problems, picture)
