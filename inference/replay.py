"""Benchmark only: an analyzer that replays detections recorded from the real
models, so that `pantau bench city` measures the rest of the pipeline (broker,
inference worker plumbing, stream apps, sink, ClickHouse) at city scale on a
machine without a GPU. It is not selectable in the configuration: only the
benchmark's own inference entry point builds it."""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from inference.analysis import FrameAnalysis, FrameAnalyzer
from pantau.config import CameraConfig


def record(
    analyzer: FrameAnalyzer, images: Sequence[npt.NDArray[np.uint8]], path: Path
) -> list[FrameAnalysis]:
    """Run the real models over ``images`` and keep what they found."""
    recorded = analyzer.analyze_batch(list(images), [None] * len(images))
    path.write_bytes(pickle.dumps(recorded))
    return recorded


class ReplayAnalyzer:
    """Gives the recorded analyses in turn, whatever the frame."""

    def __init__(self, path: Path) -> None:
        recorded: list[FrameAnalysis] = pickle.loads(path.read_bytes())
        if not recorded:
            raise ValueError(f"expected recorded analyses in {path}, got none")
        self._next = itertools.cycle(recorded)
        self.model_versions = {
            **recorded[0].model_versions,
            "replay": "pantau-bench-city",
        }

    def analyze_batch(
        self,
        images_bgr: Sequence[npt.NDArray[np.uint8]],
        cameras: Sequence[CameraConfig | None],
    ) -> list[FrameAnalysis]:
        return [next(self._next) for _ in images_bgr]
