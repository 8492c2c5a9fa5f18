"""Faces in frames, masked or not, and whether each wears a mask.

`FaceDetector` (BlazeFace) finds faces, including ones whose lower half is covered;
`MaskClassifier` gives P(mask) for each face crop. Both run on PyTorch from weights
that `pantau models fetch` puts in the cache (see `infra.models.faces_fetch`).
"""

from inference.faces._runtime import ModelLoadError
from inference.faces.blazeface import FaceDetector
from inference.faces.mask_classifier import MaskClassifier

__all__ = ["FaceDetector", "MaskClassifier", "ModelLoadError"]
