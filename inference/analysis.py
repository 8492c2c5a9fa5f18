"""Everything the models say about one frame, and the one place that runs them.

The inference consumer and ``pantau detect`` both call ``FrameAnalyzer.analyze``,
so a local check of an image runs exactly what the pipeline runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from inference.detections import FrameDetections
from inference.distancing import GroundPlane, distancing_violations
from inference.roi import filter_by_roi
from pantau.config import CameraConfig


@runtime_checkable
class Detector(Protocol):
    """A model that finds objects in one BGR image."""

    name: str
    version: str

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> FrameDetections: ...


@runtime_checkable
class BatchDetector(Detector, Protocol):
    """A detector that analyses several images in one forward pass."""

    def detect_batch(
        self, images_bgr: Sequence[npt.NDArray[np.uint8]]
    ) -> list[FrameDetections]: ...


@dataclass(frozen=True)
class FrameAnalysis:
    """Objects found in one frame, with the distancing verdict per object.

    ``violations[i]`` is true when object ``i`` is a person standing closer than
    the threshold to another person. ``calibrated`` tells whether distances came
    from the camera's ground-plane calibration or from box heights.
    """

    objects: FrameDetections
    violations: npt.NDArray[np.bool_]
    calibrated: bool
    model_versions: dict[str, str]


def ground_plane(camera: CameraConfig | None) -> GroundPlane | None:
    """The camera's ground plane, when it is calibrated."""
    if camera is None or camera.ground_calibration is None:
        return None
    calibration = camera.ground_calibration
    return GroundPlane.from_points(
        calibration.image_points_xy,
        calibration.ground_points_m,
        calibration.image_wh,
    )


class FrameAnalyzer:
    """Runs the detector, keeps what stands in the camera's ROI and judges
    distancing."""

    def __init__(self, detector: Detector, distancing_threshold_m: float) -> None:
        self._detector = detector
        self._threshold_m = distancing_threshold_m
        self._ground: dict[str, GroundPlane | None] = {}
        self.model_versions = {detector.name: detector.version}

    def analyze(
        self, image_bgr: npt.NDArray[np.uint8], camera: CameraConfig | None
    ) -> FrameAnalysis:
        """Analyse one decoded frame of ``camera`` (None: no ROI, uncalibrated)."""
        return self._judge(self._detector.detect(image_bgr), camera)

    def analyze_batch(
        self,
        images_bgr: Sequence[npt.NDArray[np.uint8]],
        cameras: Sequence[CameraConfig | None],
    ) -> list[FrameAnalysis]:
        """Analyse frames together; detectors that batch run one forward pass."""
        if isinstance(self._detector, BatchDetector):
            found = self._detector.detect_batch(images_bgr)
        else:
            found = [self._detector.detect(image) for image in images_bgr]
        return [
            self._judge(item, camera)
            for item, camera in zip(found, cameras, strict=True)
        ]

    def _judge(
        self, found: FrameDetections, camera: CameraConfig | None
    ) -> FrameAnalysis:
        if camera is not None:
            found = filter_by_roi(found, camera.roi_polygon_xy)
        key = camera.id if camera is not None else ""
        if key not in self._ground:
            self._ground[key] = ground_plane(camera)
        ground = self._ground[key]
        violations = distancing_violations(found, self._threshold_m, ground)
        return FrameAnalysis(found, violations, ground is not None, self.model_versions)
