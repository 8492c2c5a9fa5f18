"""The one result type every detector produces and the event encoder consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PERSON = "person"
FACE = "face"


@dataclass(frozen=True)
class FrameDetections:
    """Objects found in one image.

    ``boxes_xyxy_px`` is an (N, 4) float32 array of pixel corners
    (x_min, y_min, x_max, y_max) in the analysed image of size ``frame_wh``;
    ``scores`` holds N confidences in [0, 1]; ``class_names`` the N class labels.
    """

    boxes_xyxy_px: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    class_names: tuple[str, ...]
    frame_wh: tuple[int, int]

    def __post_init__(self) -> None:
        count = len(self.class_names)
        if self.boxes_xyxy_px.shape != (count, 4) or self.scores.shape != (count,):
            raise ValueError(
                f"inconsistent detections: expected boxes ({count}, 4) and scores "
                f"({count},), got {self.boxes_xyxy_px.shape} and {self.scores.shape}"
            )

    @classmethod
    def empty(cls, frame_wh: tuple[int, int]) -> FrameDetections:
        """No detections in an image of this size."""
        return cls(
            np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), (), frame_wh
        )

    def __len__(self) -> int:
        return len(self.class_names)

    def count(self, class_name: str) -> int:
        """How many detections carry this class label."""
        return sum(1 for name in self.class_names if name == class_name)

    def select(self, keep: npt.NDArray[np.bool_]) -> FrameDetections:
        """The detections where ``keep`` is true."""
        names = tuple(n for n, k in zip(self.class_names, keep, strict=True) if k)
        return FrameDetections(
            self.boxes_xyxy_px[keep], self.scores[keep], names, self.frame_wh
        )

    def foot_points_xy_px(self) -> npt.NDArray[np.float32]:
        """Bottom-centre of each box, where a standing person touches the ground."""
        boxes = self.boxes_xyxy_px
        return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
