"""Following the configuration file: changes are picked up, invalid ones are
ignored, and an inference worker learns a new camera from it."""

from __future__ import annotations

import threading
from pathlib import Path
from unittest import mock

import yaml

from inference.worker import InferenceWorker
from pantau.config_watch import ConfigWatcher
from pantau.services import _camera_refresher


def write(path: Path, cameras: list[str], **extra: object) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "cameras": [
                    {
                        "id": camera,
                        "source_url": "/footage.mp4",
                        "region": {"city": "J", "kecamatan": "K", "kelurahan": "L"},
                    }
                    for camera in cameras
                ],
                **extra,
            }
        )
    )


def test_changes_are_seen_and_bad_ones_ignored(tmp_path: Path) -> None:
    path = tmp_path / "pantau.yaml"
    write(path, ["a"])
    watcher = ConfigWatcher(path, interval_s=3600, environ={})
    assert watcher.poll(force=True) is None  # unchanged
    write(path, ["a", "b"])
    assert watcher.poll() is None  # not due yet
    changed = watcher.poll(force=True)
    assert changed is not None
    assert [camera.id for camera in changed.cameras] == ["a", "b"]
    write(path, ["a", "b"], web={"port": "not a port"})
    assert watcher.poll(force=True) is None  # invalid: the running one stays
    write(path, ["c"])
    again = watcher.poll(force=True)
    assert again is not None and [c.id for c in again.cameras] == ["c"]
    assert ConfigWatcher(None).poll(force=True) is None


def test_inference_learns_a_camera_added_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "pantau.yaml"
    write(path, ["a"])
    watcher = ConfigWatcher(path, interval_s=3600, environ={})
    worker = InferenceWorker(
        consumer=mock.Mock(),
        tracker=mock.Mock(),
        dead_letters=mock.Mock(),
        frames_codec=mock.Mock(),
        events_codec=mock.Mock(),
        analyzer=mock.Mock(),
        cameras={},
        batch_max=1,
        stop=threading.Event(),
        refresh_cameras=_camera_refresher(watcher),
    )
    write(path, ["a", "new-camera"])
    camera = worker._camera("new-camera")
    assert camera is not None and camera.region.kelurahan == "L"
    # An unknown camera reads the file again at most every few seconds.
    assert worker._camera("nobody") is None
    write(path, ["a", "new-camera", "nobody"])
    assert worker._camera("nobody") is None
