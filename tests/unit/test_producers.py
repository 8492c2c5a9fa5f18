"""Frame sampler logic without a broker: sources, health, sizes, shards."""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from pantau.config import CameraConfig, PantauConfig
from producers.health import Backoff, FrozenDetector
from producers.publisher import FrameTooLargeError, fit_jpeg
from producers.sampler import CameraSampler, SamplerSettings
from producers.shard import parse_shard, select_shard, shard_of
from producers.sources import SourceUnavailableError, source_kind
from schemas.records import CameraStatus, Frame
from tests.conftest import VTEST

REGION = {"city": "Jakarta", "kecamatan": "Gambir", "kelurahan": "Gambir"}


def camera(**fields: Any) -> CameraConfig:
    return CameraConfig.model_validate(
        {"id": "cam-1", "source_url": str(VTEST), "region": REGION, **fields}
    )


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        (str(VTEST), "auto", "file"),
        ("file:///srv/video/monas.mp4", "auto", "file"),
        ("rtsp://user:pw@10.0.0.7/stream1", "auto", "stream"),
        ("http://10.0.0.8/video.mjpg", "auto", "stream"),
        ("https://cctv.example.go.id/live/cam12.m3u8", "auto", "stream"),
        ("http://10.0.0.9/snapshot.jpg", "auto", "snapshot"),
        ("http://10.0.0.9/cgi-bin/snap?ch=1", "snapshot", "snapshot"),
    ],
)
def test_source_kind(url: str, kind: str, expected: str) -> None:
    assert source_kind(camera(source_url=url, source_kind=kind)) == expected


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    backoff = Backoff(1.0, 8.0, random.Random(3))
    delays = [backoff.next_delay_s() for _ in range(6)]
    for delay, base in zip(delays, [1, 2, 4, 8, 8, 8], strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    backoff.reset()
    assert backoff.next_delay_s() <= 1.2


def frame_at(index: int) -> npt.NDArray[np.uint8]:
    capture = cv2.VideoCapture(str(VTEST))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    capture.release()
    assert ok
    return np.asarray(image, np.uint8)


def test_frozen_detector_needs_repeats_and_ignores_live_motion() -> None:
    detector = FrozenDetector(frozen_after_frames=3)
    still = frame_at(100)
    assert not detector.observe(still)
    assert detector.observe(still.copy())
    assert not detector.frozen
    assert detector.observe(still.copy())
    assert detector.frozen
    assert not detector.observe(frame_at(110))  # the street moves on
    assert not detector.frozen


def test_oversized_frames_are_downscaled_not_dropped() -> None:
    image = frame_at(0)
    full, full_wh = fit_jpeg(image, 1280, 95, 10_000_000)
    small, small_wh = fit_jpeg(image, 1280, 95, len(full) // 3)
    assert full_wh == (768, 576)
    assert len(small) <= len(full) // 3
    assert small_wh[0] < 768
    assert small_wh[0] / small_wh[1] == pytest.approx(768 / 576, rel=0.02)
    with pytest.raises(FrameTooLargeError, match="max_frame_bytes"):
        fit_jpeg(image, 1280, 95, 100)


def test_shards_split_every_camera_exactly_once() -> None:
    cameras = [camera(id=f"jkt-{i:04d}") for i in range(1500)]
    shards = [select_shard(cameras, index, 4) for index in range(4)]
    assert sorted(c.id for shard in shards for c in shard) == sorted(
        c.id for c in cameras
    )
    assert min(len(shard) for shard in shards) > 300
    assert shard_of("jkt-0042", 4) == shard_of("jkt-0042", 4)
    assert parse_shard(" 2/4 ") == (2, 4)
    for bad in ("4/4", "1", "-1/3", "a/b", "0/0"):
        with pytest.raises(ValueError, match="I/N"):
            parse_shard(bad)


def test_group_settings_fill_unset_camera_fields() -> None:
    config = PantauConfig.model_validate(
        {
            "camera_groups": {
                "masks": {
                    "sample_interval_s": 30,
                    "active_hours": {"start": "03:00", "end": "22:00"},
                }
            },
            "cameras": [
                {
                    "id": "a",
                    "source_url": str(VTEST),
                    "region": REGION,
                    "group": "masks",
                },
                {
                    "id": "b",
                    "source_url": str(VTEST),
                    "region": REGION,
                    "group": "masks",
                    "sample_interval_s": 5,
                },
            ],
        }
    )
    a, b = config.cameras
    assert a.sample_interval_s == 30
    assert b.sample_interval_s == 5
    assert str(b.active_hours.start) == "03:00:00"


class ScriptedSource:
    """Plays back a script of frames and failures."""

    def __init__(self, script: list[npt.NDArray[np.uint8] | str | None]) -> None:
        self.script = script
        self.opened = 0

    def open(self) -> None:
        self.opened += 1

    def read(self, interval_s: float) -> npt.NDArray[np.uint8] | None:
        step = self.script.pop(0) if self.script else None
        if isinstance(step, str):
            raise SourceUnavailableError(step)
        return step

    def close(self) -> None:
        """Nothing to release."""


class RecordingPublisher:
    """Keeps what the sampler publishes."""

    max_image_bytes = 1_000_000

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.states: list[CameraStatus] = []

    def publish_frame(self, frame: Frame) -> None:
        self.frames.append(frame)

    def publish_status(self, status: CameraStatus) -> None:
        self.states.append(status)


def test_sampler_reports_health_and_skips_repeats(tmp_path: Path) -> None:
    live_a, live_b, still = frame_at(0), frame_at(50), frame_at(100)
    source = ScriptedSource(
        [
            "connection refused",
            "connection refused",
            "connection refused",
            live_a,
            still,
            still.copy(),
            still.copy(),
            live_b,
        ]
    )
    publisher = RecordingPublisher()
    settings = SamplerSettings(
        max_side_px=640,
        jpeg_quality=80,
        frozen_after_frames=3,
        reconnect_initial_s=0.001,
        reconnect_max_s=0.002,
        stale_s=5,
        snapshot_timeout_s=1,
    )
    sampler = CameraSampler(
        camera=camera(sample_interval_s=0.001, source_url="http://10.0.0.9/snap.jpg"),
        publisher=publisher,  # type: ignore[arg-type]
        settings=settings,
        stop=threading.Event(),
        source=source,
    )
    sampler.run()

    assert [s["state"] for s in publisher.states] == [
        "RECONNECTING",
        "OFFLINE",
        "ONLINE",
        "FROZEN",
        "ONLINE",
    ]
    assert publisher.states[0]["reason"] == "connection refused"
    assert [f["frame_seq"] for f in publisher.frames] == [0, 1, 2]
    assert {(f["width_px"], f["height_px"]) for f in publisher.frames} == {(640, 480)}
    assert Counter(f["camera_id"] for f in publisher.frames) == {"cam-1": 3}
    assert source.opened == 4


def test_last_frame_age_grows_at_scrape_time() -> None:
    from producers.metrics import LastFrameAge

    ages = LastFrameAge()
    ages.mark("cam-1", 1000.0)
    ages.mark("cam-1", 900.0)  # an older frame acknowledged late changes nothing
    [family] = list(ages.collect())
    [sample] = family.samples
    assert sample.labels == {"camera": "cam-1"}
    assert sample.value > 1_700_000_000 - 1000
