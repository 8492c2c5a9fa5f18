"""Build the configured detector; a model that cannot load stops the worker at
start-up with a message naming the file."""

from __future__ import annotations

from pathlib import Path

from inference.analysis import Detector, FaceModels, FrameAnalyzer
from pantau.config import DetectorConfig, PipelineConfig
from pantau.errors import ModelLoadError


def build_detector(config: DetectorConfig, cache_dir: Path) -> Detector:
    """The detector ``config`` names, loaded and ready; fetched weights are read
    from ``cache_dir``."""
    if config.kind == "hog":
        from inference.hog import HogPeopleDetector

        return HogPeopleDetector()
    if config.kind == "nanodet":
        from inference.models.nanodet import NanoDetDetector
        from infra.models.fetch import nanodet_dir, nanodet_is_cached

        if not nanodet_is_cached(cache_dir):
            raise ModelLoadError(
                f"NanoDet weights are not in {nanodet_dir(cache_dir)}; fetch them "
                "with `pantau models fetch`"
            )
        return NanoDetDetector(
            nanodet_dir(cache_dir) / "nanodet.json",
            score_threshold=config.score_threshold,
            iou_threshold=config.iou_threshold,
        )
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


def build_analyzer(pipeline: PipelineConfig, cache_dir: Path) -> FrameAnalyzer:
    """The configured detector, face models and distancing, ready to analyse."""
    faces = None
    if pipeline.faces.enabled:
        from inference.faces import FaceDetector, MaskClassifier
        from inference.faces.mask_classifier import square_crop

        faces = FaceModels(
            detector=FaceDetector.from_cache(
                cache_dir, min_score=pipeline.faces.min_score
            ),
            classifier=MaskClassifier.from_cache(cache_dir),
            crop=square_crop,
            mask_threshold=pipeline.faces.mask_threshold,
        )
    return FrameAnalyzer(
        build_detector(pipeline.detector, cache_dir),
        pipeline.distancing_threshold_m,
        faces,
    )
