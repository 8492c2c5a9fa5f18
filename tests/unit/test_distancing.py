"""Distancing on the ground plane and from box heights."""

from __future__ import annotations

import numpy as np
import pytest

from inference.detections import FrameDetections
from inference.distancing import GroundPlane, distancing_violations

# A 768x576 view whose four corners of a floor region are known in metres:
# 12 m across and 9 m deep.
GROUND = GroundPlane.from_points(
    [(120, 250), (650, 250), (740, 560), (30, 560)],
    [(0.0, 0.0), (12.0, 0.0), (12.0, 9.0), (0.0, 9.0)],
    (768, 576),
)


def people(
    *boxes: tuple[float, float, float, float], other: str = "person"
) -> FrameDetections:
    names = tuple("person" for _ in boxes)
    if other != "person":
        names = (*names[:-1], other)
    return FrameDetections(
        np.asarray(boxes, np.float32).reshape(-1, 4),
        np.full(len(boxes), 0.9, np.float32),
        names,
        (768, 576),
    )


def test_projection_maps_calibration_points_back() -> None:
    ground = GROUND.to_ground_m(
        np.asarray([[120, 250], [740, 560]], np.float32), (768, 576)
    )
    np.testing.assert_allclose(ground, [[0.0, 0.0], [12.0, 9.0]], atol=1e-4)


def test_projection_rescales_smaller_frames() -> None:
    ground = GROUND.to_ground_m(np.asarray([[370, 280]], np.float32), (384, 288))
    np.testing.assert_allclose(ground, [[12.0, 9.0]], atol=1e-3)


@pytest.mark.parametrize(
    ("gap_px", "expected"),
    [
        (10, [True, True, False]),  # feet ~0.2 m apart at the back row
        (200, [False, False, False]),  # several metres apart
    ],
)
def test_calibrated_pairs_closer_than_a_metre(
    gap_px: int, expected: list[bool]
) -> None:
    found = people(
        (300, 400, 330, 540),
        (300 + gap_px, 400, 330 + gap_px, 540),
        (600, 400, 630, 540),
    )
    flags = distancing_violations(found, 1.0, GROUND)
    assert flags.tolist() == expected


def test_uncalibrated_estimate_uses_box_height() -> None:
    # Boxes 165 px tall: 1 px ~ 1 cm. Feet 50 px (~0.5 m) and 300 px (~3 m) apart.
    found = people((100, 100, 140, 265), (150, 100, 190, 265), (450, 100, 490, 265))
    assert distancing_violations(found, 1.0, None).tolist() == [True, True, False]


def test_only_people_are_flagged() -> None:
    found = people((100, 100, 140, 265), (110, 100, 150, 265), other="car")
    assert distancing_violations(found, 1.0, None).tolist() == [False, False]
    assert distancing_violations(people((1, 1, 2, 2)), 1.0, None).tolist() == [False]
