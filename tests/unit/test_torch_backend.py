"""The TorchScript plug-in path for an operator's own YOLO-class detector.

The model here is a test double written in the test: it turns a known box into
YOLO-shaped output, so decoding, letterboxing and NMS are checked exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import pytest
import torch

from inference.detectors import build_detector
from inference.torch_backend import (
    decode_yolo,
    fit_square,
    grouped_nms,
    letterbox,
    select_device,
)
from pantau.config import DetectorConfig
from pantau.errors import ModelLoadError

CLASSES = ("person", "car", "kite")


class FixedYoloV8(torch.nn.Module):
    """Always reports a person and an overlapping duplicate, a car and a kite,
    at fixed model-input positions (cx, cy, w, h), whatever the image."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rows = torch.tensor(
            [
                [320.0, 320.0, 100.0, 200.0, 0.9, 0.0, 0.0],
                [322.0, 321.0, 100.0, 200.0, 0.8, 0.0, 0.0],
                [100.0, 400.0, 80.0, 40.0, 0.0, 0.7, 0.0],
                [500.0, 100.0, 30.0, 30.0, 0.0, 0.0, 0.95],
                [50.0, 50.0, 10.0, 10.0, 0.1, 0.0, 0.0],
            ],
            dtype=images.dtype,
        )
        return rows.t().unsqueeze(0).repeat(images.shape[0], 1, 1)


def test_letterbox_fits_and_maps_back() -> None:
    image = np.zeros((576, 768, 3), np.uint8)
    chw, box = letterbox(image, 640)
    assert chw.shape == (3, 640, 640)
    back = box.to_image_px(np.array([[0, 80, 640, 560]], np.float32))
    np.testing.assert_allclose(back, [[0, 0, 768, 576]], atol=1)


def test_fit_square_centres_the_image_on_the_padding() -> None:
    image = np.full((10, 40, 3), 200, np.uint8)
    canvas, placement = fit_square(
        image, 20, pad_value=7, shrink_interpolation=cv2.INTER_AREA
    )
    assert canvas.shape == (20, 20, 3)
    # 40x10 shrinks to 20x5, 15 rows of padding: 7 above, 8 below.
    assert (placement.scale, placement.pad_x_px, placement.pad_y_px) == (0.5, 0, 7)
    assert (canvas[7:12] == 200).all()
    assert (canvas[:7] == 7).all() and (canvas[12:] == 7).all()


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("cpu", (torch.device("cpu"), torch.float32)),
        (torch.device("cpu"), (torch.device("cpu"), torch.float32)),
        ("cuda", (torch.device("cuda"), torch.float16)),
        ("cuda:0", (torch.device("cuda", 0), torch.float16)),
    ],
)
def test_select_device_runs_cuda_in_fp16_and_else_fp32(
    requested: str | torch.device, expected: tuple[torch.device, torch.dtype]
) -> None:
    assert select_device(requested) == expected


def test_select_device_defaults_to_what_is_present() -> None:
    device, _ = select_device()
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]).float()
    scores = torch.tensor([0.5, 0.9, 0.7])
    assert grouped_nms(boxes, scores, torch.zeros(3), 0.5).tolist() == [1, 2]
    # In different groups, overlapping boxes do not suppress each other.
    assert grouped_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [
        1,
        2,
        0,
    ]


def test_yolov5_layout_multiplies_objectness() -> None:
    output = torch.tensor([[[320, 320, 100, 200, 0.5, 0.9, 0.0, 0.0]]]).float()
    [(_, scores, names)] = decode_yolo(output, "yolov5", CLASSES, 0.3, 0.5)
    assert names == ("person",)
    assert scores.tolist() == pytest.approx([0.45])
    with pytest.raises(ModelLoadError, match="3 class scores"):
        decode_yolo(output, "yolov5", ("person", "car", "kite", "bus"), 0.3, 0.5)


def save_model(kind: str, tmp_path: Path) -> Path:
    if kind == "torchscript":
        path = tmp_path / "fixed.torchscript"
        torch.jit.save(torch.jit.script(FixedYoloV8()), str(path))
    else:
        path = tmp_path / "fixed.pt2"
        example = (torch.zeros(2, 3, 640, 640),)
        batch = torch.export.Dim("batch", min=1, max=64)
        program = torch.export.export(
            FixedYoloV8(), example, dynamic_shapes=({0: batch},)
        )
        torch.export.save(program, str(path))
    return path


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("kind", ["torchscript", "torch_export"])
def test_plugged_in_detector_from_configuration(kind: str, tmp_path: Path) -> None:
    path = save_model(kind, tmp_path)
    detector = build_detector(
        DetectorConfig(kind=kind, path=path, class_names=CLASSES),  # type: ignore[arg-type]
        tmp_path,
    )
    image = np.zeros((576, 768, 3), np.uint8)
    [found, again] = detector.detect_batch([image, image])  # type: ignore[attr-defined]
    assert found.class_names == ("person", "car")  # kite is not counted
    assert found.frame_wh == (768, 576)
    # Person centred at model (320, 320): image centre; 100x200 -> 120x240 px.
    np.testing.assert_allclose(found.boxes_xyxy_px[0], [324, 168, 444, 408], atol=1)
    assert again.class_names == found.class_names


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_missing_or_broken_weights_stop_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        build_detector(
            DetectorConfig(kind="torchscript", path=tmp_path / "none.pt"), tmp_path
        )
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a model")
    kinds: tuple[Literal["torchscript", "torch_export"], ...] = (
        "torchscript",
        "torch_export",
    )
    for kind in kinds:
        with pytest.raises(ModelLoadError, match="cannot load"):
            build_detector(DetectorConfig(kind=kind, path=broken), tmp_path)
    with pytest.raises(ModelLoadError, match="pantau models fetch"):
        build_detector(DetectorConfig(kind="nanodet"), tmp_path)
    with pytest.raises(ValueError, match="needs path"):
        DetectorConfig(kind="torchscript")
