"""Everything the models say about one frame, and the one place that runs them.

The inference consumer and ``pantau detect`` both call ``FrameAnalyzer.analyze``,
so a local check of an image runs exactly what the pipeline runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from inference.detections import FACE, FrameDetections
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


class FaceModel(Protocol):
    """Finds faces in one BGR image: (N, 4) xyxy pixel boxes and (N,) scores."""

    version: str

    def detect(
        self, image_bgr: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...


class MaskModel(Protocol):
    """P(mask) for each BGR face crop."""

    version: str

    def predict(
        self, crops_bgr: Sequence[npt.NDArray[np.uint8]]
    ) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class FaceModels:
    """The face detector and mask classifier, with how faces are cut out."""

    detector: FaceModel
    classifier: MaskModel
    crop: Callable[
        [npt.NDArray[np.uint8], npt.NDArray[np.float32]], npt.NDArray[np.uint8]
    ]
    mask_threshold: float


@dataclass(frozen=True)
class FrameAnalysis:
    """Objects and faces found in one frame, with the verdicts.

    ``violations[i]`` is true when object ``i`` is a person standing closer than
    the threshold to another person. ``calibrated`` tells whether distances came
    from the camera's ground-plane calibration or from box heights.
    ``mask_probability[j]`` is P(mask) of face ``j``; ``masked[j]`` whether it
    passed the mask threshold. Without face models ``faces`` is empty.
    """

    objects: FrameDetections
    violations: npt.NDArray[np.bool_]
    calibrated: bool
    model_versions: dict[str, str]
    faces: FrameDetections = field(
        default_factory=lambda: FrameDetections.empty((0, 0))
    )
    mask_probability: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((0,), np.float32)
    )
    mask_threshold: float = 0.5

    @property
    def masked(self) -> npt.NDArray[np.bool_]:
        """Per face: P(mask) at or above the threshold."""
        return np.asarray(self.mask_probability >= self.mask_threshold, bool)


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


class Analyzer(Protocol):
    """What an inference worker needs from its analyzer."""

    model_versions: dict[str, str]

    def analyze_batch(
        self,
        images_bgr: Sequence[npt.NDArray[np.uint8]],
        cameras: Sequence[CameraConfig | None],
    ) -> list[FrameAnalysis]: ...


class FrameAnalyzer:
    """Runs the detector, keeps what stands in the camera's ROI and judges
    distancing."""

    def __init__(
        self,
        detector: Detector,
        distancing_threshold_m: float,
        faces: FaceModels | None = None,
    ) -> None:
        self._detector = detector
        self._threshold_m = distancing_threshold_m
        self._faces = faces
        self._ground: dict[str, GroundPlane | None] = {}
        self.model_versions = {detector.name: detector.version}
        if faces is not None:
            self.model_versions["faces"] = faces.detector.version
            self.model_versions["masks"] = faces.classifier.version

    def analyze(
        self, image_bgr: npt.NDArray[np.uint8], camera: CameraConfig | None
    ) -> FrameAnalysis:
        """Analyse one decoded frame of ``camera`` (None: no ROI, uncalibrated)."""
        return self._judge(image_bgr, self._detector.detect(image_bgr), camera)

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
            self._judge(image, item, camera)
            for image, item, camera in zip(images_bgr, found, cameras, strict=True)
        ]

    def _judge(
        self,
        image_bgr: npt.NDArray[np.uint8],
        found: FrameDetections,
        camera: CameraConfig | None,
    ) -> FrameAnalysis:
        if camera is not None:
            found = filter_by_roi(found, camera.roi_polygon_xy)
        key = camera.id if camera is not None else ""
        if key not in self._ground:
            self._ground[key] = ground_plane(camera)
        ground = self._ground[key]
        violations = distancing_violations(found, self._threshold_m, ground)
        if self._faces is None:
            return FrameAnalysis(
                found, violations, ground is not None, self.model_versions
            )
        faces, probability = self._find_faces(image_bgr, camera)
        return FrameAnalysis(
            found,
            violations,
            ground is not None,
            self.model_versions,
            faces,
            probability,
            self._faces.mask_threshold,
        )

    def _find_faces(
        self, image_bgr: npt.NDArray[np.uint8], camera: CameraConfig | None
    ) -> tuple[FrameDetections, npt.NDArray[np.float32]]:
        assert self._faces is not None
        boxes, scores = self._faces.detector.detect(image_bgr)
        height, width = image_bgr.shape[:2]
        faces = FrameDetections(
            np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(scores, np.float32).reshape(-1),
            (FACE,) * len(scores),
            (width, height),
        )
        if camera is not None:
            faces = filter_by_roi(faces, camera.roi_polygon_xy)
        crops = [self._faces.crop(image_bgr, box) for box in faces.boxes_xyxy_px]
        probability = (
            self._faces.classifier.predict(crops) if crops else np.zeros(0, np.float32)
        )
        return faces, np.asarray(probability, np.float32)
