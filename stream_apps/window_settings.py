"""The window settings both window stages share, and the store they keep state in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from pantau.config import PipelineConfig


class Store(Protocol):
    """The part of a faust table (or a dict, in unit tests) the stages use."""

    def get(self, key: str, /) -> Any: ...

    def __setitem__(self, key: str, value: Any) -> None: ...

    def __delitem__(self, key: str) -> None: ...


@dataclass(frozen=True)
class WindowSettings:
    """Window sizes in milliseconds and how the stages advance.

    ``source_partitions`` is the partition count of the detections topic: the
    region stage waits for the event time of every one of them before it closes a
    region window, except for partitions silent for ``idle_ms`` of wall time.
    """

    size_ms: int
    hop_ms: int
    grace_ms: int
    rolling: bool
    heartbeat_ms: int
    idle_ms: int
    future_tolerance_ms: int
    source_partitions: int

    def __post_init__(self) -> None:
        if self.size_ms <= 0 or self.hop_ms <= 0 or self.size_ms % self.hop_ms:
            raise ValueError(
                "window size must be a positive multiple of the hop: expected "
                f"size_ms % hop_ms == 0, got size_ms={self.size_ms} "
                f"hop_ms={self.hop_ms}"
            )
        if self.source_partitions < 1:
            raise ValueError(
                "expected at least one detections partition, got "
                f"{self.source_partitions}"
            )

    @classmethod
    def from_pipeline(
        cls, pipeline: PipelineConfig, source_partitions: int
    ) -> WindowSettings:
        """Settings from the configuration's pipeline section."""
        return cls(
            size_ms=pipeline.window_size_s * 1000,
            hop_ms=pipeline.window_hop_s * 1000,
            grace_ms=pipeline.window_grace_s * 1000,
            rolling=pipeline.rolling_windows,
            heartbeat_ms=int(pipeline.window_heartbeat_s * 1000),
            idle_ms=int(pipeline.window_idle_s * 1000),
            future_tolerance_ms=pipeline.window_future_tolerance_s * 1000,
            source_partitions=source_partitions,
        )
