"""PyTorch plumbing shared by the neural detectors: device choice, letterboxing,
YOLO-class output decoding and non-maximum suppression.

On a CUDA GPU models run in fp16; on the CPU in fp32.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import cv2
import numpy as np
import numpy.typing as npt
import torch

from inference.detections import FrameDetections
from pantau.errors import ModelLoadError

Layout = Literal["yolov8", "yolov5"]

# The classes Pantau counts; a model's other classes are dropped.
COUNTED_CLASSES = frozenset({"person", "bicycle", "car", "motorcycle", "bus", "truck"})


# torch.jit.load carries no annotations.
_jit_load = cast(Callable[..., torch.jit.ScriptModule], torch.jit.load)


def select_device(
    requested: str | torch.device | None = None,
) -> tuple[torch.device, torch.dtype]:
    """The `requested` device, or CUDA when a GPU is present, else the CPU; with
    fp16 on CUDA (about twice as fast there) and fp32 elsewhere."""
    device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
    return device, torch.float16 if device.type == "cuda" else torch.float32


@dataclass(frozen=True)
class Letterbox:
    """How an image was scaled and padded into a square model input."""

    scale: float
    pad_x_px: int
    pad_y_px: int

    def to_image_px(
        self, boxes_xyxy: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """Map boxes from model-input pixels to original-image pixels, in place;
        returns `boxes_xyxy`."""
        boxes_xyxy[:, [0, 2]] -= self.pad_x_px
        boxes_xyxy[:, [1, 3]] -= self.pad_y_px
        boxes_xyxy /= self.scale
        return boxes_xyxy


def fit_square(
    image_bgr: npt.NDArray[np.uint8],
    size_px: int,
    *,
    pad_value: int,
    shrink_interpolation: int,
) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Fit a BGR image into a ``size_px`` square BGR canvas filled with
    ``pad_value``, centred, aspect kept.

    Enlarging is bilinear, shrinking uses ``shrink_interpolation`` (an OpenCV flag).
    """
    height, width = image_bgr.shape[:2]
    scale = size_px / max(height, width)
    new_w = max(1, min(size_px, round(width * scale)))
    new_h = max(1, min(size_px, round(height * scale)))
    canvas = np.full((size_px, size_px, 3), pad_value, np.uint8)
    pad_x, pad_y = (size_px - new_w) // 2, (size_px - new_h) // 2
    if (new_w, new_h) == (width, height):
        resized = image_bgr
    else:
        interpolation = shrink_interpolation if scale < 1.0 else cv2.INTER_LINEAR
        resized = np.asarray(
            cv2.resize(image_bgr, (new_w, new_h), interpolation=interpolation),
            np.uint8,
        )
    canvas[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return canvas, Letterbox(scale, pad_x, pad_y)


def letterbox(
    image_bgr: npt.NDArray[np.uint8], size_px: int
) -> tuple[npt.NDArray[np.float32], Letterbox]:
    """The image fitted into a ``size_px`` square with YOLO's grey padding, as an
    RGB CHW float array in [0, 1]."""
    canvas, placement = fit_square(
        image_bgr, size_px, pad_value=114, shrink_interpolation=cv2.INTER_LINEAR
    )
    chw = canvas[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255.0
    return np.ascontiguousarray(chw), placement


def grouped_nms(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    groups: torch.Tensor,
    iou_threshold: float,
) -> torch.Tensor:
    """Greedy non-maximum suppression within each group; indices of the kept
    boxes, best first."""
    if boxes.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    # Shifting each group past the others' extent keeps groups apart.
    span = float((boxes.max() - boxes.min()).item()) + 1.0
    boxes = boxes + groups[:, None].to(boxes.dtype) * span
    order = torch.argsort(scores, descending=True)
    boxes = boxes[order]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    top_left = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    bottom_right = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(dim=2)
    union = areas[:, None] + areas[None, :] - inter
    overlaps = (inter / union.clamp(min=1e-12) > iou_threshold).cpu().numpy()
    suppressed = np.zeros(len(order), dtype=bool)
    kept: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed |= overlaps[i]
    return order[torch.tensor(kept, device=order.device)]


def decode_yolo(
    output: torch.Tensor,
    layout: Layout,
    class_names: Sequence[str],
    score_threshold: float,
    iou_threshold: float,
) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], tuple[str, ...]]]:
    """Per image: boxes (xyxy, model-input pixels), scores and class names of the
    counted classes, after class-aware NMS."""
    output = output.float().cpu()
    if layout == "yolov8":  # (batch, 4 + classes, anchors)
        per_anchor = output.transpose(1, 2)
        boxes_cxcywh, class_scores = per_anchor[..., :4], per_anchor[..., 4:]
    else:  # (batch, anchors, 5 + classes), objectness at index 4
        boxes_cxcywh = output[..., :4]
        class_scores = output[..., 5:] * output[..., 4:5]
    if class_scores.shape[-1] != len(class_names):
        raise ModelLoadError(
            f"model outputs {class_scores.shape[-1]} class scores, expected "
            f"{len(class_names)} (detector.class_names); check detector.layout"
        )
    counted = torch.tensor([name in COUNTED_CLASSES for name in class_names])
    results = []
    for image_boxes, scores_all in zip(boxes_cxcywh, class_scores, strict=True):
        best_scores, best_labels = scores_all.max(dim=1)
        keep = (best_scores >= score_threshold) & counted[best_labels]
        boxes, scores, labels = image_boxes[keep], best_scores[keep], best_labels[keep]
        xyxy = torch.cat(
            [boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], 1
        )
        # Per-class suppression keeps a rider and their bicycle apart.
        kept = grouped_nms(xyxy, scores, labels, iou_threshold).cpu()
        names = tuple(class_names[int(i)] for i in labels[kept])
        results.append(
            (
                xyxy[kept].numpy().astype(np.float32).reshape(-1, 4),
                scores[kept].numpy().astype(np.float32),
                names,
            )
        )
    return results


def load_module(
    path: Path, kind: str, device: torch.device, dtype: torch.dtype
) -> torch.nn.Module:
    """A model saved with torch.jit.save (torchscript) or torch.export.save
    (torch_export), on ``device`` in ``dtype``, ready for inference."""
    try:
        if kind == "torch_export":
            # Exported programs have no train mode to leave.
            exported: torch.nn.Module = torch.export.load(str(path)).module()
            return exported.to(device, dtype)
        module: torch.nn.Module = _jit_load(str(path), map_location=device)
        return module.to(dtype).eval()
    except (RuntimeError, ValueError, OSError, KeyError, zipfile.BadZipFile) as error:
        raise ModelLoadError(
            f"cannot load {kind} detector {path}: {type(error).__name__}: {error}"
        ) from error


class TorchScriptDetector:
    """An operator's own YOLO-class detector, saved as TorchScript or as a
    torch.export program."""

    name = "objects"

    def __init__(
        self,
        path: Path,
        *,
        kind: str,
        layout: Layout,
        input_size_px: int,
        class_names: Sequence[str],
        score_threshold: float,
        iou_threshold: float,
    ) -> None:
        self._device, self._dtype = select_device()
        self._module = load_module(path, kind, self._device, self._dtype)
        self._layout: Layout = layout
        self._size_px = input_size_px
        self._class_names = tuple(class_names)
        self._score_threshold = score_threshold
        self._iou_threshold = iou_threshold
        self.version = f"{kind}/{path.name}"

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> FrameDetections:
        return self.detect_batch([image_bgr])[0]

    @torch.inference_mode()
    def detect_batch(
        self, images_bgr: Sequence[npt.NDArray[np.uint8]]
    ) -> list[FrameDetections]:
        fitted = [letterbox(image, self._size_px) for image in images_bgr]
        batch = torch.from_numpy(np.stack([chw for chw, _ in fitted]))
        output = self._module(batch.to(self._device, self._dtype))
        if isinstance(output, tuple | list):
            output = output[0]
        decoded = decode_yolo(
            output,
            self._layout,
            self._class_names,
            self._score_threshold,
            self._iou_threshold,
        )
        results = []
        for image, (_, box), (boxes, scores, names) in zip(
            images_bgr, fitted, decoded, strict=True
        ):
            height, width = image.shape[:2]
            pixels = box.to_image_px(boxes)
            pixels[:, [0, 2]] = pixels[:, [0, 2]].clip(0, width)
            pixels[:, [1, 3]] = pixels[:, [1, 3]].clip(0, height)
            results.append(FrameDetections(pixels, scores, names, (width, height)))
        return results
