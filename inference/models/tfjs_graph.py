"""Read a TensorFlow.js graph model (`model.json` plus `.bin` shards) into numpy.

A graph model is a TensorFlow GraphDef written as JSON (`modelTopology.node`, each
node an op name, its inputs and its attributes) and a `weightsManifest` that lays the
constant tensors end to end in binary shards. Weights may be stored quantized: as
float16, or as uint8/uint16 with a linear scale; they are expanded back to their
original dtype here, the way the TensorFlow.js loader does it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

_T = TypeVar("_T")

_NUMPY_DTYPES: Mapping[str, type[np.generic]] = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "float16": np.float16,
    "uint8": np.uint8,
    "uint16": np.uint16,
}


class TfjsGraphError(ValueError):
    """A TensorFlow.js graph model is malformed or uses something not supported."""


@dataclass(frozen=True)
class GraphNode:
    """One node of the graph: an op applied to named inputs.

    ``inputs`` are tensor references, `"node"` or `"node:k"` for the k-th output;
    control dependencies (`"^node"`) are dropped. ``attrs`` keeps the raw JSON
    attribute values; read them with the `attr_*` helpers.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, Any]

    def attr_int(self, key: str, default: int | None = None) -> int:
        value = self.attrs.get(key)
        if value is None:
            return self._missing(key, default)
        return int(value["i"])

    def attr_float(self, key: str, default: float | None = None) -> float:
        value = self.attrs.get(key)
        if value is None:
            return self._missing(key, default)
        return float(value["f"])

    def attr_bool(self, key: str, default: bool | None = None) -> bool:
        value = self.attrs.get(key)
        if value is None:
            return self._missing(key, default)
        return bool(value.get("b", False))

    def attr_str(self, key: str, default: str | None = None) -> str:
        value = self.attrs.get(key)
        if value is None:
            return self._missing(key, default)
        return base64.b64decode(value.get("s", "")).decode("ascii")

    def attr_ints(
        self, key: str, default: tuple[int, ...] | None = None
    ) -> tuple[int, ...]:
        value = self.attrs.get(key)
        if value is None:
            return self._missing(key, default)
        return tuple(int(i) for i in value.get("list", {}).get("i", []))

    def _missing(self, key: str, default: _T | None) -> _T:
        if default is None:
            raise TfjsGraphError(
                f"node {self.name!r} ({self.op}) has no attribute {key!r}"
            )
        return default


@dataclass(frozen=True)
class TfjsGraph:
    """A parsed graph model: nodes in file order, weights by node name."""

    nodes: tuple[GraphNode, ...]
    weights: Mapping[str, npt.NDArray[Any]]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]


def load_tfjs_graph(model_json: Path) -> TfjsGraph:
    """Parse `model_json` and the weight shards next to it.

    Inputs are the `Placeholder` nodes; outputs are taken from the model signature
    when it has one, otherwise they are the nodes that no other node reads.
    """
    model = json.loads(model_json.read_text("utf-8"))
    if model.get("format") != "graph-model":
        raise TfjsGraphError(
            f"{model_json}: expected format 'graph-model', got {model.get('format')!r}"
        )
    nodes = tuple(_parse_node(raw) for raw in model["modelTopology"]["node"])
    weights = _read_weights(model_json.parent, model["weightsManifest"])
    inputs = tuple(node.name for node in nodes if node.op == "Placeholder")
    return TfjsGraph(nodes, weights, inputs, _output_names(model, nodes))


def _parse_node(raw: Mapping[str, Any]) -> GraphNode:
    inputs = tuple(ref for ref in raw.get("input", []) if not ref.startswith("^"))
    return GraphNode(raw["name"], raw["op"], inputs, raw.get("attr", {}))


def _output_names(
    model: Mapping[str, Any], nodes: tuple[GraphNode, ...]
) -> tuple[str, ...]:
    signature_outputs = model.get("signature", {}).get("outputs", {})
    if signature_outputs:
        names = (output["name"] for output in signature_outputs.values())
        return tuple(sorted(name.removesuffix(":0") for name in names))
    consumed = {ref.split(":")[0] for node in nodes for ref in node.inputs}
    return tuple(node.name for node in nodes if node.name not in consumed)


def _read_weights(
    model_dir: Path, manifest: list[Mapping[str, Any]]
) -> dict[str, npt.NDArray[Any]]:
    weights: dict[str, npt.NDArray[Any]] = {}
    for group in manifest:
        data = b"".join((model_dir / path).read_bytes() for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            array, offset = _decode_weight(spec, data, offset)
            weights[spec["name"]] = array
        if offset != len(data):
            raise TfjsGraphError(
                f"weight shards {group['paths']} hold {len(data)} bytes, the "
                f"manifest describes {offset}"
            )
    return weights


def _decode_weight(
    spec: Mapping[str, Any], data: bytes, offset: int
) -> tuple[npt.NDArray[Any], int]:
    shape = tuple(int(dim) for dim in spec["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    dtype = _numpy_dtype(spec["dtype"], spec["name"])
    quantization = spec.get("quantization")
    stored = (
        dtype
        if quantization is None
        else _numpy_dtype(quantization["dtype"], spec["name"])
    )
    size = count * np.dtype(stored).itemsize
    if offset + size > len(data):
        raise TfjsGraphError(
            f"weight {spec['name']!r} needs bytes {offset}..{offset + size}, the "
            f"shards end at {len(data)}"
        )
    raw = np.frombuffer(
        data, dtype=np.dtype(stored).newbyteorder("<"), count=count, offset=offset
    )
    if quantization is None or stored == np.float16:
        values = raw.astype(dtype)
    else:
        # Affine quantization: value = quantized * scale + min.
        scale = float(quantization["scale"])
        minimum = float(quantization["min"])
        values = (raw.astype(np.float32) * scale + minimum).astype(dtype)
    return values.reshape(shape), offset + size


def _numpy_dtype(name: str, weight: str) -> type[np.generic]:
    try:
        return _NUMPY_DTYPES[name]
    except KeyError as exc:
        raise TfjsGraphError(
            f"weight {weight!r} has dtype {name!r}; supported are "
            f"{sorted(_NUMPY_DTYPES)}"
        ) from exc
