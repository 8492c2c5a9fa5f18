"""Build the configured detector; a model that cannot load stops the worker at
start-up with a message naming the file."""

from __future__ import annotations

from inference.analysis import Detector
from pantau.config import DetectorConfig
from pantau.errors import ModelLoadError


def build_detector(config: DetectorConfig) -> Detector:
    """The detector ``config`` names, loaded and ready."""
    if config.kind == "hog":
        from inference.hog import HogPeopleDetector

        return HogPeopleDetector()
    from inference.torch_backend import TorchScriptDetector

    if config.path is None or not config.path.is_file():
        raise ModelLoadError(
            f"detector file {config.path} does not exist; set pipeline.detector.path "
            "to the exported model"
        )
    return TorchScriptDetector(
        config.path,
        kind=config.kind,
        layout=config.layout,
        input_size_px=config.input_size_px,
        class_names=config.class_names,
        score_threshold=config.score_threshold,
        iou_threshold=config.iou_threshold,
    )
