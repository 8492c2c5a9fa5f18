"""The running samplers of one producer process, kept in step with the
configuration: cameras added to this shard start, removed ones stop, changed
ones restart, and the others go on untouched."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pantau.config import CameraConfig
from producers.sampler import CameraSampler

log = logging.getLogger("pantau.producers")

_JOIN_TIMEOUT_S = 30.0


@dataclass
class _Running:
    camera: CameraConfig
    stop: threading.Event
    thread: threading.Thread


class SamplerPool:
    """One thread per camera, each with its own stop signal."""

    def __init__(
        self,
        make_sampler: Callable[[CameraConfig, threading.Event], CameraSampler],
        stop: threading.Event,
    ) -> None:
        self._make_sampler = make_sampler
        self._stop = stop
        self._running: dict[str, _Running] = {}

    @property
    def camera_ids(self) -> list[str]:
        return sorted(self._running)

    def apply(self, cameras: list[CameraConfig]) -> None:
        """Run exactly ``cameras``, restarting those whose settings changed."""
        wanted = {camera.id: camera for camera in cameras}
        for camera_id, running in list(self._running.items()):
            if wanted.get(camera_id) != running.camera:
                self._stop_one(camera_id, running)
        started = []
        for camera_id, camera in wanted.items():
            if camera_id not in self._running:
                self._start_one(camera)
                started.append(camera_id)
        if started:
            log.info("samplers started cameras=%s", ",".join(started))

    def _start_one(self, camera: CameraConfig) -> None:
        stop = threading.Event()
        sampler = self._make_sampler(camera, stop)
        thread = threading.Thread(
            target=sampler.run, name=f"sampler-{camera.id}", daemon=True
        )
        self._running[camera.id] = _Running(camera, stop, thread)
        thread.start()

    def _stop_one(self, camera_id: str, running: _Running) -> None:
        running.stop.set()
        running.thread.join(_JOIN_TIMEOUT_S)
        if running.thread.is_alive():
            log.warning(
                "sampler still stopping after %.0f s camera=%s",
                _JOIN_TIMEOUT_S,
                camera_id,
            )
        del self._running[camera_id]
        log.info("sampler stopped camera=%s reason=configuration", camera_id)

    def alive(self) -> bool:
        """Whether any sampler thread still runs."""
        return any(r.thread.is_alive() for r in self._running.values())

    def stop_all(self, timeout_s: float) -> None:
        """Stop every sampler and wait up to ``timeout_s`` in all."""
        for running in self._running.values():
            running.stop.set()
        for running in self._running.values():
            running.thread.join(timeout_s)

    def follow(self) -> None:
        """Pass the process's stop signal on to every sampler."""
        if self._stop.is_set():
            for running in self._running.values():
                running.stop.set()
