"""Split a camera list deterministically across N sampler processes."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from pantau.config import CameraConfig

_SHARD = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` as (I, N) with 0 <= I < N."""
    match = _SHARD.match(text.strip())
    if match is None:
        raise ValueError(f"expected a shard as I/N such as 0/4, got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"expected 0 <= I < N in shard I/N, got {index}/{count}")
    return index, count


def shard_of(camera_id: str, count: int) -> int:
    """The shard a camera belongs to; stable across processes and releases."""
    return zlib.crc32(camera_id.encode()) % count


def select_shard(
    cameras: Sequence[CameraConfig], index: int, count: int
) -> list[CameraConfig]:
    """The cameras of shard ``index`` out of ``count``."""
    return [camera for camera in cameras if shard_of(camera.id, count) == index]
