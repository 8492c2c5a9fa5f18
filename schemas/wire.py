"""The Confluent wire format: one magic byte 0, a 4-byte big-endian schema id, the
Avro binary body."""

from __future__ import annotations

import struct

MAGIC_BYTE = 0
_HEADER = struct.Struct(">bI")
HEADER_SIZE = _HEADER.size


class WireFormatError(ValueError):
    """Bytes that are not a message in the Confluent wire format."""


def pack(schema_id: int, body: bytes) -> bytes:
    """Prefix an Avro body with the wire-format header."""
    return _HEADER.pack(MAGIC_BYTE, schema_id) + body


def unpack(message: bytes) -> tuple[int, memoryview]:
    """Split a message into its schema id and Avro body."""
    if len(message) < HEADER_SIZE:
        raise WireFormatError(
            f"message too short for the wire format: expected at least "
            f"{HEADER_SIZE} bytes, got {len(message)}"
        )
    magic, schema_id = _HEADER.unpack_from(message)
    if magic != MAGIC_BYTE:
        raise WireFormatError(
            f"bad magic byte: expected {MAGIC_BYTE}, got {magic}; the producer did "
            "not write Confluent wire-format Avro"
        )
    return schema_id, memoryview(message)[HEADER_SIZE:]
