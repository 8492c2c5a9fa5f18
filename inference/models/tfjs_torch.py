"""Run a TensorFlow.js graph model as a PyTorch module.

`TfjsGraphModule` interprets the node list of a `TfjsGraph`: each TensorFlow op is
mapped to its PyTorch equivalent once, at construction, and `forward` replays that
list. Tensors keep TensorFlow's layout (the graph decides where NHWC and NCHW are);
only convolution and pooling, which TensorFlow runs on NHWC, switch to PyTorch's NCHW
and back. Those permutations are views, and PyTorch runs the NCHW view of an NHWC
tensor as a channels-last convolution, so the round trip costs no copies.

Nodes whose inputs are all constants are evaluated with numpy at construction; the
values that shape the computation (permutations, paddings, sizes, axes) become plain
Python numbers, and the float weights become buffers that follow `.to(device)` and
`.half()`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn
from torch.nn import functional as fn

from inference.models.tfjs_graph import GraphNode, TfjsGraph, TfjsGraphError

Array = npt.NDArray[Any]
OpFn = Callable[[Sequence[Tensor]], list[Tensor]]


@dataclass(frozen=True)
class _Step:
    node: str
    run: OpFn
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


class _Builder:
    """What an op sees while it is being mapped: constants and a buffer registry."""

    def __init__(
        self,
        module: TfjsGraphModule,
        constants: Mapping[str, Array],
        batch_polymorphic: bool,
    ):
        self._module = module
        self._constants = constants
        self.batch_polymorphic = batch_polymorphic
        self._buffer_of: dict[str, str] = {}

    def constant_buffer(self, ref: str) -> str:
        """The buffer reference of constant `ref`, registered once however often
        it is read."""
        if ref not in self._buffer_of:
            self._buffer_of[ref] = self.buffer(self._constants[ref])
        return self._buffer_of[ref]

    def constant(self, node: GraphNode, index: int) -> Array:
        ref = _canonical(node.inputs[index])
        if ref not in self._constants:
            raise TfjsGraphError(
                f"node {node.name!r} ({node.op}): input {index} ({ref}) must be a "
                "constant for the PyTorch mapping, it is computed at run time"
            )
        return self._constants[ref]

    def ints(self, node: GraphNode, index: int) -> list[int]:
        return [int(v) for v in self.constant(node, index).ravel()]

    def buffer(self, array: Array) -> str:
        """Register `array` as a buffer and return the reference that reads it."""
        name = f"const_{len(self._module.constant_refs)}"
        self._module.register_buffer(
            name, torch.from_numpy(np.ascontiguousarray(array))
        )
        ref = f"#{name}"
        self._module.constant_refs[ref] = name
        return ref


OpBuilder = Callable[[GraphNode, _Builder], tuple[OpFn, tuple[str, ...]]]
"""Maps one node: returns the function and the references of its run-time inputs."""


class TfjsGraphModule(nn.Module):
    """A TensorFlow.js graph model as an `nn.Module`.

    ``forward`` takes the graph's inputs in the order of ``graph.input_names`` and
    returns its outputs in the order of ``graph.output_names``.

    Graphs exported with a batch size of one bake it into their reshapes. With
    ``batch_polymorphic`` such reshapes keep the input's leading dimension instead,
    so a batch runs in one pass; construction fails unless every op that moves
    dimensions leaves dimension 0 alone (so that it is the batch throughout).
    """

    def __init__(self, graph: TfjsGraph, *, batch_polymorphic: bool = False) -> None:
        super().__init__()
        self.input_names = graph.input_names
        self.output_names = graph.output_names
        self.constant_refs: dict[str, str] = {}
        by_name = {node.name: node for node in graph.nodes}
        order = _topological_order(by_name, graph.output_names)
        constants = _fold_constants(order, graph.weights)
        builder = _Builder(self, constants, batch_polymorphic)

        steps: list[_Step] = []
        for node in order:
            if node.op == "Placeholder" or f"{node.name}:0" in constants:
                continue
            make = _OPS.get(node.op)
            if make is None:
                raise TfjsGraphError(
                    f"node {node.name!r} uses op {node.op!r}, which has no PyTorch "
                    f"mapping; mapped ops: {sorted(_OPS)}"
                )
            if batch_polymorphic:
                _check_batch_axis(node, builder)
            run, inputs = make(node, builder)
            refs = tuple(
                ref if ref.startswith("#") else _canonical(ref) for ref in inputs
            )
            refs = tuple(
                builder.constant_buffer(ref) if ref in constants else ref
                for ref in refs
            )
            outputs = tuple(f"{node.name}:{k}" for k in range(_output_count(node)))
            steps.append(_Step(node.name, run, refs, outputs))
        self._steps = tuple(steps)
        self.ops_used = tuple(sorted({node.op for node in order}))

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise ValueError(
                f"expected {len(self.input_names)} inputs {self.input_names}, got "
                f"{len(inputs)}"
            )
        values: dict[str, Tensor] = {
            f"{name}:0": tensor
            for name, tensor in zip(self.input_names, inputs, strict=True)
        }
        buffers = dict(self.named_buffers())
        for ref, name in self.constant_refs.items():
            values[ref] = buffers[name]
        for step in self._steps:
            results = step.run([values[ref] for ref in step.inputs])
            for ref, tensor in zip(step.outputs, results, strict=True):
                values[ref] = tensor
        return tuple(values[f"{name}:0"] for name in self.output_names)


def _canonical(ref: str) -> str:
    return ref if ":" in ref else f"{ref}:0"


def _output_count(node: GraphNode) -> int:
    if node.op in ("Split", "SplitV"):
        return node.attr_int("num_split")
    return 1


def _topological_order(
    nodes: Mapping[str, GraphNode], outputs: Sequence[str]
) -> list[GraphNode]:
    """The nodes the outputs depend on, each after all of its inputs."""
    order: list[GraphNode] = []
    state: dict[str, bool] = {}  # False while visiting, True once placed
    stack: list[tuple[str, bool]] = [(name, False) for name in reversed(outputs)]
    while stack:
        name, inputs_done = stack.pop()
        if inputs_done:
            state[name] = True
            order.append(nodes[name])
            continue
        if name in state:
            if not state[name]:
                raise TfjsGraphError(f"the graph has a cycle through {name!r}")
            continue
        if name not in nodes:
            raise TfjsGraphError(f"a node reads {name!r}, which the graph lacks")
        state[name] = False
        stack.append((name, True))
        for ref in reversed(nodes[name].inputs):
            source = ref.split(":")[0]
            if source not in state:
                stack.append((source, False))
            elif not state[source]:
                raise TfjsGraphError(f"the graph has a cycle through {source!r}")
    return order


# Constant folding -------------------------------------------------------------------


def _fold_constants(
    order: Sequence[GraphNode], weights: Mapping[str, Array]
) -> dict[str, Array]:
    constants: dict[str, Array] = {}
    for node in order:
        if node.op == "Const":
            if node.name not in weights:
                raise TfjsGraphError(f"constant {node.name!r} has no weight data")
            constants[f"{node.name}:0"] = weights[node.name]
            continue
        refs = [_canonical(ref) for ref in node.inputs]
        fold = _FOLDS.get(node.op)
        if fold is None or not refs or any(ref not in constants for ref in refs):
            continue
        constants[f"{node.name}:0"] = fold([constants[ref] for ref in refs])
    return constants


def _sparse_to_dense(args: list[Array]) -> Array:
    indices, shape, values, default = args
    dense = np.full([int(d) for d in np.ravel(shape)], default, dtype=values.dtype)
    index_rows = np.reshape(indices, (len(indices), -1)) if indices.size else indices
    for row, value in zip(
        index_rows, np.broadcast_to(values, len(indices)), strict=True
    ):
        dense[tuple(int(i) for i in np.ravel(row))] = value
    return dense


_FOLDS: Mapping[str, Callable[[list[Array]], Array]] = {
    "Identity": lambda a: a[0],
    "Add": lambda a: np.add(a[0], a[1]),
    "AddV2": lambda a: np.add(a[0], a[1]),
    "Sub": lambda a: np.subtract(a[0], a[1]),
    "Mul": lambda a: np.multiply(a[0], a[1]),
    "Reshape": lambda a: np.reshape(a[0], [int(d) for d in np.ravel(a[1])]),
    "Transpose": lambda a: np.transpose(a[0], [int(d) for d in np.ravel(a[1])]),
    "SparseToDense": _sparse_to_dense,
}


# Op mappings ------------------------------------------------------------------------


def _elementwise(fn: Callable[[Tensor, Tensor], Tensor]) -> OpBuilder:
    def make(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
        return (lambda x: [fn(x[0], x[1])]), node.inputs[:2]

    return make


def _unary(fn: Callable[[Tensor], Tensor]) -> OpBuilder:
    def make(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
        return (lambda x: [fn(x[0])]), node.inputs[:1]

    return make


def _leaky_relu(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
    alpha = node.attr_float("alpha", 0.2)
    return (lambda x: [fn.leaky_relu(x[0], alpha)]), node.inputs[:1]


def _transpose(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
    perm = builder.ints(node, 1)
    return (lambda x: [x[0].permute(perm)]), node.inputs[:1]


def _reshape(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
    shape = builder.ints(node, 1)
    if builder.batch_polymorphic:
        rest = shape[1:]
        return (lambda x: [x[0].reshape([x[0].shape[0], *rest])]), node.inputs[:1]
    return (lambda x: [x[0].reshape(shape)]), node.inputs[:1]


def _check_batch_axis(node: GraphNode, builder: _Builder) -> None:
    """Fail unless `node` keeps dimension 0 as the batch."""
    moves_batch = False
    if node.op == "Transpose":
        moves_batch = builder.ints(node, 1)[0] != 0
    elif node.op == "Reshape":
        moves_batch = builder.ints(node, 1)[0] != 1
    elif node.op == "ConcatV2":
        moves_batch = int(builder.constant(node, node.attr_int("N"))) == 0
    elif node.op == "SplitV":
        moves_batch = int(builder.constant(node, 2)) == 0
    elif node.op in ("Pad", "PadV2"):
        moves_batch = bool(np.any(builder.constant(node, 1)[0]))
    if moves_batch:
        raise TfjsGraphError(
            f"node {node.name!r} ({node.op}) works across dimension 0, so the graph "
            "cannot run with another batch size than it was exported with"
        )


def _torch_pad(paddings: Array) -> list[int]:
    """TensorFlow's [rank, 2] paddings as fn.pad's list, last dimension first."""
    flat: list[int] = []
    for before, after in reversed(np.reshape(paddings, (-1, 2)).tolist()):
        flat += [int(before), int(after)]
    return flat


def _pad(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
    pads = _torch_pad(builder.constant(node, 1))
    value = 0.0
    if node.op == "PadV2":
        value = float(builder.constant(node, 2))
    return (lambda x: [fn.pad(x[0], pads, value=value)]), node.inputs[:1]


def _concat(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
    count = node.attr_int("N")
    axis = int(builder.constant(node, count))
    return (lambda x: [torch.cat(list(x), dim=axis)]), node.inputs[:count]


def _split_v(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
    sizes = builder.ints(node, 1)
    axis = int(builder.constant(node, 2))
    return (lambda x: list(torch.split(x[0], sizes, dim=axis))), node.inputs[:1]


def _spatial_attrs(node: GraphNode) -> tuple[tuple[int, int], str]:
    if node.attr_str("data_format", "NHWC") != "NHWC":
        raise TfjsGraphError(
            f"node {node.name!r} ({node.op}): only data_format NHWC is mapped, got "
            f"{node.attr_str('data_format')}"
        )
    strides = node.attr_ints("strides", (1, 1, 1, 1))
    return (strides[1], strides[2]), node.attr_str("padding")


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis: the odd pixel goes after."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _spatial_pads(
    node: GraphNode,
    padding: str,
    *,
    hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> list[int]:
    """fn.pad list (left, right, top, bottom) for an NCHW tensor; empty when none."""
    if padding == "VALID":
        return []
    if padding == "SAME":
        top, bottom = _same_pads(hw[0], kernel[0], stride[0], dilation[0])
        left, right = _same_pads(hw[1], kernel[1], stride[1], dilation[1])
        return [left, right, top, bottom]
    if padding == "EXPLICIT":
        explicit = node.attr_ints("explicit_paddings")
        return [explicit[4], explicit[5], explicit[2], explicit[3]]
    raise TfjsGraphError(f"node {node.name!r}: unknown padding {padding!r}")


def _conv2d(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
    stride, padding = _spatial_attrs(node)
    dilations = node.attr_ints("dilations", (1, 1, 1, 1))
    dilation = (dilations[1], dilations[2])
    filter_hwio = builder.constant(node, 1)
    depthwise = node.op == "DepthwiseConv2dNative"
    if depthwise:
        # [h, w, in, multiplier] -> [in * multiplier, 1, h, w]
        h, w, cin, mult = filter_hwio.shape
        weight = filter_hwio.reshape(h, w, 1, cin * mult).transpose(3, 2, 0, 1)
    else:
        weight = filter_hwio.transpose(3, 2, 0, 1)
    kernel = (int(weight.shape[2]), int(weight.shape[3]))
    per_group_in = int(weight.shape[1])
    weight_ref = builder.buffer(weight)

    def run(x: Sequence[Tensor]) -> list[Tensor]:
        nchw = x[0].permute(0, 3, 1, 2)
        pads = _spatial_pads(
            node,
            padding,
            hw=(nchw.shape[2], nchw.shape[3]),
            kernel=kernel,
            stride=stride,
            dilation=dilation,
        )
        if pads:
            nchw = fn.pad(nchw, pads)
        groups = nchw.shape[1] // per_group_in
        out = fn.conv2d(nchw, x[1], None, stride, 0, dilation, groups)
        return [out.permute(0, 2, 3, 1)]

    return run, (node.inputs[0], weight_ref)


def _max_pool(node: GraphNode, builder: _Builder) -> tuple[OpFn, tuple[str, ...]]:
    stride, padding = _spatial_attrs(node)
    ksize = node.attr_ints("ksize")
    kernel = (ksize[1], ksize[2])

    def run(x: Sequence[Tensor]) -> list[Tensor]:
        nchw = x[0].permute(0, 3, 1, 2)
        pads = _spatial_pads(
            node,
            padding,
            hw=(nchw.shape[2], nchw.shape[3]),
            kernel=kernel,
            stride=stride,
            dilation=(1, 1),
        )
        if pads:
            nchw = fn.pad(nchw, pads, value=-math.inf)
        return [fn.max_pool2d(nchw, kernel, stride).permute(0, 2, 3, 1)]

    return run, node.inputs[:1]


def resize_bilinear_nhwc(
    images: Tensor, size_hw: tuple[int, int], align_corners: bool, half_pixel: bool
) -> Tensor:
    """TensorFlow's ResizeBilinear on an NHWC tensor, all three sampling modes.

    Written out rather than taken from fn.interpolate because PyTorch has no
    equivalent of TensorFlow's legacy mode (both flags false), which TensorFlow.js
    uses by default.
    """
    rows = _bilinear_taps(
        images.shape[1], size_hw[0], align_corners, half_pixel, images.device
    )
    cols = _bilinear_taps(
        images.shape[2], size_hw[1], align_corners, half_pixel, images.device
    )
    dtype = images.dtype
    top, bottom, row_frac = rows
    upper = images[:, top]
    lower = images[:, bottom]
    blended = upper + (lower - upper) * row_frac.to(dtype)[None, :, None, None]
    left, right, col_frac = cols
    first = blended[:, :, left]
    second = blended[:, :, right]
    return first + (second - first) * col_frac.to(dtype)[None, None, :, None]


def _bilinear_taps(
    in_size: int,
    out_size: int,
    align_corners: bool,
    half_pixel: bool,
    device: torch.device,
) -> tuple[Tensor, Tensor, Tensor]:
    if align_corners and out_size > 1:
        scale = (in_size - 1) / (out_size - 1)
    else:
        scale = in_size / out_size
    positions = torch.arange(out_size, dtype=torch.float64, device=device)
    source = (positions + 0.5) * scale - 0.5 if half_pixel else positions * scale
    floor = torch.floor(source)
    low = floor.clamp(min=0).long()
    high = torch.ceil(source).clamp(max=in_size - 1).long()
    high = torch.maximum(high, low)
    frac = (source - floor).float()
    return low.clamp(max=in_size - 1), high, frac


def _resize_bilinear(
    node: GraphNode, builder: _Builder
) -> tuple[OpFn, tuple[str, ...]]:
    height, width = builder.ints(node, 1)
    align = node.attr_bool("align_corners", False)
    half = node.attr_bool("half_pixel_centers", False)
    return (
        lambda x: [resize_bilinear_nhwc(x[0], (height, width), align, half)]
    ), node.inputs[:1]


_OPS: Mapping[str, OpBuilder] = {
    "Identity": _unary(lambda x: x),
    "Sigmoid": _unary(torch.sigmoid),
    "Relu": _unary(fn.relu),
    "Relu6": _unary(lambda x: fn.hardtanh(x, 0.0, 6.0)),
    "LeakyRelu": _leaky_relu,
    "Add": _elementwise(torch.add),
    "AddV2": _elementwise(torch.add),
    "Sub": _elementwise(torch.sub),
    "Mul": _elementwise(torch.mul),
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Pad": _pad,
    "PadV2": _pad,
    "ConcatV2": _concat,
    "SplitV": _split_v,
    "Conv2D": _conv2d,
    "DepthwiseConv2dNative": _conv2d,
    "MaxPool": _max_pool,
    "ResizeBilinear": _resize_bilinear,
}
