"""Physical distancing: who stands closer than the threshold to someone else.

With a camera's ground-plane calibration (four image points and where they lie
on the ground in metres), each person's foot point is projected onto the ground
and distances are measured there. Without one, the scale at each person is
estimated from the height of their box, assuming an average adult height; such
frames are marked uncalibrated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from inference.detections import PERSON, FrameDetections

# Average standing adult height used to turn box heights into metres when a
# camera has no calibration.
ASSUMED_PERSON_HEIGHT_M = 1.65


@dataclass(frozen=True)
class GroundPlane:
    """A homography from image pixels to ground metres for one frame size."""

    image_to_ground: npt.NDArray[np.float64]
    image_wh: tuple[int, int]

    @classmethod
    def from_points(
        cls,
        image_points_xy: Sequence[tuple[float, float]],
        ground_points_m: Sequence[tuple[float, float]],
        image_wh: tuple[int, int],
    ) -> GroundPlane:
        """The plane through four image points and their ground positions."""
        matrix = cv2.getPerspectiveTransform(
            np.asarray(image_points_xy, np.float32),
            np.asarray(ground_points_m, np.float32),
        )
        return cls(np.asarray(matrix, np.float64), image_wh)

    def to_ground_m(
        self, points_xy_px: npt.NDArray[np.float32], frame_wh: tuple[int, int]
    ) -> npt.NDArray[np.float64]:
        """Ground positions in metres of image points of a frame of ``frame_wh``
        (rescaled to the calibration's frame size first)."""
        scale = np.array(
            [self.image_wh[0] / frame_wh[0], self.image_wh[1] / frame_wh[1]]
        )
        scaled = (points_xy_px.astype(np.float64) * scale).reshape(-1, 1, 2)
        projected = cv2.perspectiveTransform(scaled, self.image_to_ground)
        return np.asarray(projected, np.float64).reshape(-1, 2)


def _pairwise_m(positions_m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    deltas = positions_m[:, None, :] - positions_m[None, :, :]
    distances: npt.NDArray[np.float64] = np.sqrt((deltas**2).sum(axis=-1))
    np.fill_diagonal(distances, np.inf)
    return distances


def distancing_violations(
    detections: FrameDetections,
    threshold_m: float,
    ground: GroundPlane | None,
) -> npt.NDArray[np.bool_]:
    """For each detection, whether it is a person closer than ``threshold_m`` to
    another person (always False for other classes)."""
    is_person = np.array([name == PERSON for name in detections.class_names], bool)
    flags = np.zeros(len(detections), bool)
    if is_person.sum() < 2:
        return flags
    people = detections.select(is_person)
    feet_px = people.foot_points_xy_px()
    if ground is not None:
        distances_m = _pairwise_m(ground.to_ground_m(feet_px, detections.frame_wh))
    else:
        heights_px = np.maximum(
            1.0, people.boxes_xyxy_px[:, 3] - people.boxes_xyxy_px[:, 1]
        ).astype(np.float64)
        metres_per_px = ASSUMED_PERSON_HEIGHT_M / heights_px
        pixel_distances = _pairwise_m(feet_px.astype(np.float64))
        pair_scale = (metres_per_px[:, None] + metres_per_px[None, :]) / 2
        distances_m = pixel_distances * pair_scale
    flags[np.flatnonzero(is_person)] = (distances_m < threshold_m).any(axis=1)
    return flags
