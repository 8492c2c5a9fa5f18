"""Sample one camera on its schedule and publish each new picture.

One sampler thread per camera: a camera that fails waits out its own back-off
and never delays the others. Health changes go to the camera-status topic.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from pantau.config import CameraConfig, PantauConfig
from producers.health import Backoff, FrozenDetector
from producers.metrics import REPEATED, SAMPLED
from producers.publisher import FramePublisher, FrameTooLargeError, fit_jpeg
from producers.sources import FrameSource, SourceUnavailableError, open_source
from schemas.records import CameraState, Frame

log = logging.getLogger("pantau.producers")

# Failed attempts in a row after which a RECONNECTING camera is reported OFFLINE.
_OFFLINE_AFTER_ATTEMPTS = 3


@dataclass(frozen=True)
class SamplerSettings:
    """What a camera sampler needs beyond the camera itself."""

    max_side_px: int
    jpeg_quality: int
    frozen_after_frames: int
    reconnect_initial_s: float
    reconnect_max_s: float
    stale_s: float
    snapshot_timeout_s: float

    @classmethod
    def for_camera(cls, config: PantauConfig, camera: CameraConfig) -> SamplerSettings:
        """The pipeline and producer settings, with the camera's overrides."""
        producers = config.producers
        return cls(
            max_side_px=camera.frame_max_side_px or config.pipeline.frame_max_side_px,
            jpeg_quality=camera.jpeg_quality or config.pipeline.jpeg_quality,
            frozen_after_frames=producers.frozen_after_frames,
            reconnect_initial_s=producers.reconnect_initial_s,
            reconnect_max_s=producers.reconnect_max_s,
            stale_s=producers.stream_stale_s,
            snapshot_timeout_s=producers.snapshot_timeout_s,
        )


class CameraSampler:
    """Publishes one frame of a camera every ``sample_interval_s`` inside its
    active hours, keyed by camera id, and reports the camera's health."""

    def __init__(
        self,
        *,
        camera: CameraConfig,
        publisher: FramePublisher,
        settings: SamplerSettings,
        stop: threading.Event,
        max_frames: int | None = None,
        source: FrameSource | None = None,
    ) -> None:
        self._camera = camera
        self._publisher = publisher
        self._settings = settings
        self._stop = stop
        self._max_frames = max_frames
        self._source = source or open_source(
            camera,
            stale_s=settings.stale_s,
            snapshot_timeout_s=settings.snapshot_timeout_s,
        )
        self._frozen = FrozenDetector(settings.frozen_after_frames)
        self._backoff = Backoff(settings.reconnect_initial_s, settings.reconnect_max_s)
        self._state: CameraState | None = None
        self._connected = False
        self._last_frame_at_ms: int | None = None
        self.published = 0

    @property
    def state(self) -> CameraState | None:
        """The camera's last reported health."""
        return self._state

    def run(self) -> None:
        """Sample until stopped, out of frames, or ``max_frames`` are published."""
        camera = self._camera
        interval_s = camera.sample_interval_s
        next_due = time.monotonic()
        log.info(
            "sampling camera=%s source=%s interval_s=%s",
            camera.id,
            camera.display_url,
            interval_s,
        )
        try:
            while not self._stop.is_set():
                if self._max_frames is not None and self.published >= self._max_frames:
                    break
                if self._stop.wait(max(0.0, next_due - time.monotonic())):
                    break
                # A slow camera never causes a burst of catch-up samples.
                next_due = max(next_due + interval_s, time.monotonic())
                delay_s = self._sample_once(interval_s)
                if delay_s is None:
                    log.info("camera=%s source ended", camera.id)
                    break
                next_due = max(next_due, time.monotonic() + delay_s)
        finally:
            self._source.close()
            log.info("camera=%s stopped frames=%s", camera.id, self.published)

    def _sample_once(self, interval_s: float) -> float | None:
        """One sampling step; returns extra seconds to wait (a back-off after a
        failure), or None when a finite source has ended."""
        if not self._camera.is_active(datetime.now(UTC)):
            if self._connected:
                self._source.close()
                self._connected = False
            self._set_state("INACTIVE", "outside the camera's active hours")
            return 0.0
        try:
            if not self._connected:
                self._source.open()
                self._connected = True
            image = self._source.read(interval_s)
        except SourceUnavailableError as error:
            return self._failed(str(error))
        if image is None:
            return None
        self._backoff.reset()
        SAMPLED.labels(self._camera.id).inc()
        if self._frozen.observe(image):
            REPEATED.labels(self._camera.id).inc()
            if self._frozen.frozen:
                self._set_state(
                    "FROZEN",
                    f"the same picture {self._frozen.repeats + 1} times in a row",
                )
            return 0.0
        self._publish(image)
        self._set_state("ONLINE", None)
        return 0.0

    def _failed(self, reason: str) -> float:
        self._source.close()
        self._connected = False
        delay_s = self._backoff.next_delay_s()
        attempts = self._backoff.attempts
        state: CameraState = (
            "OFFLINE" if attempts >= _OFFLINE_AFTER_ATTEMPTS else "RECONNECTING"
        )
        log.warning(
            "camera=%s unavailable attempt=%s retry_in_s=%.1f reason=%s",
            self._camera.id,
            attempts,
            delay_s,
            reason,
        )
        self._set_state(state, reason)
        return delay_s

    def _set_state(self, state: CameraState, reason: str | None) -> None:
        """Publish a camera-status message when the state changes."""
        if state == self._state:
            return
        self._state = state
        log.info("camera=%s state=%s reason=%s", self._camera.id, state, reason)
        self._publisher.publish_status(
            {
                "camera_id": self._camera.id,
                "state": state,
                "changed_at_ms": int(time.time() * 1000),
                "reason": reason,
                "last_frame_at_ms": self._last_frame_at_ms,
            }
        )

    def _publish(self, image: npt.NDArray[np.uint8]) -> None:
        captured_at_ms = int(time.time() * 1000)
        try:
            jpeg, (width, height) = fit_jpeg(
                image,
                self._settings.max_side_px,
                self._settings.jpeg_quality,
                self._publisher.max_image_bytes,
            )
        except FrameTooLargeError as error:
            log.error("camera=%s frame not published: %s", self._camera.id, error)
            return
        frame: Frame = {
            "camera_id": self._camera.id,
            "frame_seq": self.published,
            "captured_at_ms": captured_at_ms,
            "published_at_ms": int(time.time() * 1000),
            "width_px": width,
            "height_px": height,
            "content_type": "image/jpeg",
            "image": jpeg,
        }
        self._publisher.publish_frame(frame)
        self._last_frame_at_ms = captured_at_ms
        self.published += 1
        log.debug(
            "frame published camera=%s seq=%s bytes=%s",
            self._camera.id,
            frame["frame_seq"],
            len(jpeg),
        )
