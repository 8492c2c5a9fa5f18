"""``pantau bench inference``: frames per second of the inference path against
the bare model on the same frames, in the same run, per batch size.

The bare side runs the configured models (detector, face detector, mask
classifier) on decoded frames. The pipeline side does everything a worker does
with a message except the broker round trip: Avro decode, JPEG decode, the
models, ROI and distancing, event building and Avro encode.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
import numpy.typing as npt

from inference.analysis import FrameAnalyzer
from inference.decode import decode_jpeg
from inference.events import build_detection_event
from pantau.config import CameraConfig
from producers.bench import load_frames
from producers.publisher import fit_jpeg
from schemas.codec import AvroCodec
from schemas.records import Frame, Region
from schemas.registry import LocalResolver

T = TypeVar("T")

_REGION: Region = {"city": "Bench", "kecamatan": "Bench", "kelurahan": "Bench"}


@dataclass(frozen=True)
class BatchFigures:
    """Frames per second of the bare model and of the whole path."""

    batch_size: int
    bare_fps: float
    pipeline_fps: float

    @property
    def ratio(self) -> float:
        return self.pipeline_fps / self.bare_fps if self.bare_fps else 0.0


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _bare(
    analyzer: FrameAnalyzer, images: list[npt.NDArray[np.uint8]], size: int
) -> float:
    """The models alone on decoded images: detector, faces, masks."""
    started = time.perf_counter()
    for chunk in _chunks(images, size):
        analyzer.analyze_batch(chunk, [None] * len(chunk))
    return len(images) / (time.perf_counter() - started)


def _pipeline(
    analyzer: FrameAnalyzer,
    camera: CameraConfig,
    messages: list[bytes],
    size: int,
) -> float:
    frames_codec = AvroCodec("bench.frames", "frame", LocalResolver())
    events_codec = AvroCodec("bench.detections", "detection_event", LocalResolver())
    started = time.perf_counter()
    for chunk in _chunks(messages, size):
        frames = [cast(Frame, frames_codec.decode(m)) for m in chunk]
        images = [decode_jpeg(f["image"], 50_000_000) for f in frames]
        analyses = analyzer.analyze_batch(images, [camera] * len(images))
        for frame, analysis in zip(frames, analyses, strict=True):
            event = build_detection_event(
                frame, _REGION, analysis, int(time.time() * 1000)
            )
            events_codec.encode(event)
    return len(messages) / (time.perf_counter() - started)


def bench_inference(
    analyzer: FrameAnalyzer,
    *,
    video: Path,
    frame_count: int,
    batch_sizes: Sequence[int],
) -> tuple[list[BatchFigures], str]:
    """Measure every batch size; returns the figures and a printable report."""
    images = load_frames(video, frame_count)
    codec = AvroCodec("bench.frames", "frame", LocalResolver())
    messages = []
    for seq, image in enumerate(images):
        jpeg, (width, height) = fit_jpeg(image, 1280, 85, 10_000_000)
        frame: Frame = {
            "camera_id": "bench",
            "frame_seq": seq,
            "captured_at_ms": seq,
            "published_at_ms": seq,
            "width_px": width,
            "height_px": height,
            "content_type": "image/jpeg",
            "image": jpeg,
        }
        messages.append(codec.encode(frame))
    camera = CameraConfig.model_validate(
        {"id": "bench", "source_url": str(video), "region": dict(_REGION)}
    )
    _bare(analyzer, images[:2], 1)  # warm-up: first calls allocate
    figures = [
        BatchFigures(
            size,
            _bare(analyzer, images, size),
            _pipeline(analyzer, camera, messages, size),
        )
        for size in batch_sizes
    ]
    lines = [
        f"models {analyzer.model_versions}: {len(images)} frames of {video.name}, "
        f"{images[0].shape[1]}x{images[0].shape[0]} px",
        f"{'batch':>5}  {'bare models fps':>15}  {'pipeline fps':>13}  ratio",
    ]
    lines += [
        f"{f.batch_size:>5}  {f.bare_fps:>15.1f}  {f.pipeline_fps:>13.1f}  "
        f"{f.ratio:.3f}"
        for f in figures
    ]
    return figures, "\n".join(lines)
