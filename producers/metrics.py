"""Prometheus metrics of the frame samplers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

SAMPLED = Counter("pantau_frames_sampled_total", "Frames read from cameras", ["camera"])
PUBLISHED = Counter(
    "pantau_frames_published_total", "Frames acknowledged by Kafka", ["camera"]
)
FAILED = Counter(
    "pantau_frames_failed_total", "Frames Kafka did not acknowledge", ["camera"]
)
PUBLISHED_BYTES = Counter(
    "pantau_frame_bytes_total", "Frame message bytes acknowledged", ["camera"]
)
REPEATED = Counter(
    "pantau_frames_repeated_total",
    "Frames not published because they repeated the previous picture",
    ["camera"],
)


class LastFrameAge(Collector):
    """Seconds since each camera's last acknowledged frame, computed at scrape
    time so a silent camera's age keeps growing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_s: dict[str, float] = {}

    def mark(self, camera_id: str, at_s: float) -> None:
        """Record a delivered frame of ``camera_id`` captured at ``at_s``."""
        with self._lock:
            self._last_s[camera_id] = max(at_s, self._last_s.get(camera_id, 0.0))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "pantau_camera_last_frame_age_seconds",
            "Seconds since the camera's last frame was acknowledged by Kafka",
            labels=["camera"],
        )
        now = time.time()
        with self._lock:
            for camera_id, last_s in self._last_s.items():
                family.add_metric([camera_id], now - last_s)
        yield family


LAST_FRAME_AGE = LastFrameAge()
REGISTRY.register(LAST_FRAME_AGE)
