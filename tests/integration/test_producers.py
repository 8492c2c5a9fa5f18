"""Frame samplers against real servers: the broker restarting under them, and
real camera protocols served on loopback from the demo footage."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from infra.embedded import Endpoints
from infra.kafka_broker import EmbeddedKafka
from infra.ports import free_port
from pantau.config import PantauConfig
from pantau.kafka import topic_name
from pantau.services import build_samplers, run_samplers
from schemas.topics import CAMERA_STATUS, FRAMES
from tests.camera_servers import (
    HlsServer,
    MjpegServer,
    RtspServer,
    ffmpeg_missing_reason,
    rtsp_missing_reason,
)
from tests.conftest import make_config
from tests.kafka_io import read_topic

pytestmark = pytest.mark.integration


def run_in_thread(
    config: PantauConfig, bootstrap: str, max_frames: int | None
) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    publisher, samplers = build_samplers(
        config, Endpoints(bootstrap, "http://127.0.0.1:1"), stop, max_frames=max_frames
    )
    thread = threading.Thread(
        target=run_samplers, args=(publisher, samplers, 120.0), daemon=True
    )
    thread.start()
    return thread, stop


def test_broker_restart_mid_stream_loses_and_duplicates_nothing(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path, sample_interval_s=0.05)
    frames = 80
    thread, _stop = run_in_thread(config, bootstrap, max_frames=frames)
    time.sleep(1.5)
    kafka_broker.restart()
    thread.join(180)
    assert not thread.is_alive()

    records = read_topic(bootstrap, topic_name(config.kafka, FRAMES), "frame")
    sequences = [record["frame_seq"] for record in records]
    assert sorted(sequences) == list(range(frames))  # nothing lost, nothing twice
    statuses = read_topic(
        bootstrap, topic_name(config.kafka, CAMERA_STATUS), "camera_status"
    )
    assert [s["state"] for s in statuses] == ["ONLINE"]


def camera_entry(camera_id: str, url: str, interval_s: float = 0.3) -> dict[str, Any]:
    return {
        "id": camera_id,
        "source_url": url,
        "region": {"city": "Jakarta", "kecamatan": "Gambir", "kelurahan": "Gambir"},
        "sample_interval_s": interval_s,
    }


def protocol_config(
    bootstrap: str, topic_prefix: str, tmp_path: Path, cameras: list[dict[str, Any]]
) -> PantauConfig:
    base = make_config(bootstrap, topic_prefix, tmp_path)
    return base.model_copy(
        update={
            "cameras": [type(base.cameras[0]).model_validate(c) for c in cameras],
            "producers": base.producers.model_copy(
                update={
                    "stream_stale_s": 2.0,
                    "reconnect_initial_s": 0.2,
                    "reconnect_max_s": 1.0,
                    "snapshot_timeout_s": 2.0,
                    "frozen_after_frames": 3,
                }
            ),
        }
    )


def by_camera(records: list[dict[str, Any]], field: str) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for record in records:
        grouped.setdefault(record["camera_id"], []).append(record[field])
    return grouped


def test_cameras_of_every_protocol_and_the_broken_ones_side_by_side(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    secret = "s3cr3t-pw"
    with contextlib.ExitStack() as stack:
        mjpeg = stack.enter_context(MjpegServer(auth=("operator", secret)))
        frozen = stack.enter_context(MjpegServer(frozen=True))
        broken = stack.enter_context(MjpegServer(corrupt_snapshot=True))
        # Accepts connections and never answers, like a hung camera.
        silent = stack.enter_context(socket.create_server(("127.0.0.1", 0)))
        silent_port = silent.getsockname()[1]
        cameras = [
            camera_entry("mjpeg", mjpeg.url()),
            camera_entry("snapshot", mjpeg.url("/snapshot.jpg")),
            camera_entry("frozen", frozen.url()),
            camera_entry("corrupt", broken.url("/snapshot.jpg")),
            camera_entry(
                "wrong-password", mjpeg.url("/snapshot.jpg").replace(secret, "nope")
            ),
            camera_entry("unreachable", f"http://127.0.0.1:{free_port()}/snapshot.jpg"),
            camera_entry("silent", f"http://127.0.0.1:{silent_port}/stream.mjpg"),
        ]
        if ffmpeg_missing_reason() is None:
            hls = stack.enter_context(HlsServer())
            cameras.append(camera_entry("hls", hls.url()))
        if rtsp_missing_reason() is None:
            rtsp = stack.enter_context(RtspServer())
            cameras.append(camera_entry("rtsp", rtsp.url()))
        config = protocol_config(bootstrap, topic_prefix, tmp_path, cameras)
        thread, stop = run_in_thread(config, bootstrap, max_frames=None)
        time.sleep(8.0)
        stop.set()
        thread.join(60)
    assert not thread.is_alive()

    frames = by_camera(
        read_topic(bootstrap, topic_name(config.kafka, FRAMES), "frame"), "frame_seq"
    )
    statuses = read_topic(
        bootstrap, topic_name(config.kafka, CAMERA_STATUS), "camera_status"
    )
    states = by_camera(statuses, "state")
    reasons = " ".join(str(s["reason"]) for s in statuses)

    live = ["mjpeg", "snapshot"] + [
        c["id"] for c in cameras if c["id"] in {"hls", "rtsp"}
    ]
    for camera_id in live:
        assert len(frames.get(camera_id, [])) >= 5, (camera_id, states.get(camera_id))
        assert states[camera_id][0] == "ONLINE"
        assert len(set(frames[camera_id])) == len(frames[camera_id])
    assert frames["frozen"] == [0]
    assert states["frozen"] == ["ONLINE", "FROZEN"]
    for camera_id in ("corrupt", "wrong-password", "unreachable"):
        assert camera_id not in frames
        assert states[camera_id][:2] == ["RECONNECTING", "OFFLINE"]
    assert "silent" not in frames
    assert states["silent"][0] == "RECONNECTING"
    assert "not an image" in reasons
    assert "HTTP 401" in reasons
    assert secret not in reasons and "nope" not in reasons


def test_a_camera_that_goes_away_comes_back(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    with MjpegServer() as camera:
        config = protocol_config(
            bootstrap, topic_prefix, tmp_path, [camera_entry("street", camera.url())]
        )
        thread, stop = run_in_thread(config, bootstrap, max_frames=None)
        time.sleep(3.0)
        camera.stop()
        time.sleep(5.0)
        camera.start()
        time.sleep(5.0)
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    states = [
        s["state"]
        for s in read_topic(
            bootstrap, topic_name(config.kafka, CAMERA_STATUS), "camera_status"
        )
    ]
    assert states[0] == "ONLINE"
    assert "RECONNECTING" in states
    assert states[-1] == "ONLINE"
    assert camera.stream_requests >= 2
    frames = read_topic(bootstrap, topic_name(config.kafka, FRAMES), "frame")
    assert len(frames) >= 10
