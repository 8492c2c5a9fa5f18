"""``pantau bench city``: a city's cameras simulated on this machine, through
the real broker, inference workers, windows workers, sink and ClickHouse.

- Cameras: ``--cameras`` (default 1,500) spread over 44 kecamatan and 267
  kelurahan, each publishing a real JPEG frame of the demo footage every
  ``--interval`` seconds, stamped with the time it is published.
- Inference: worker processes whose analyzer replays detections that the
  configured models found in the demo footage at the start of the run
  (``inference.replay``), so that what is measured is the rest of the pipeline.
- Windows workers, the sink and a ClickHouse server (chDB over HTTP) run as in
  a deployment, as separate processes.

Reported: frames offered and frames counted in ClickHouse per second (their
ratio is the baseline comparison: 1.0 means the pipeline kept up), consumer lag
of each stage over time, and the latency from capture to the camera's window
row in ClickHouse (p50, p95, p99), measured by polling ClickHouse every
``POLL_S`` seconds (the latency's resolution).
"""

from __future__ import annotations

import bisect
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import yaml
from confluent_kafka import Producer

from infra.clickhouse_server import EmbeddedClickHouse
from infra.ports import free_port
from infra.topics_admin import ensure_topics
from pantau.clickhouse import connect
from pantau.config import PantauConfig
from pantau.config_loader import load_config
from pantau.kafka import make_resolver, producer_config, topic_name
from pantau.progress import ProgressProbe
from schemas.codec import AvroCodec
from schemas.records import Frame
from schemas.topics import DETECTIONS, FRAMES, WINDOWS
from stream_apps.windows import APP_ID

log = logging.getLogger("pantau.bench")

KECAMATAN = 44
KELURAHAN = 267
POLL_S = 1.0
LAG_EVERY_S = 5.0
RECORDED_FRAMES = 16


def city_cameras(count: int, interval_s: float) -> list[dict[str, Any]]:
    """``count`` cameras over the kecamatan and kelurahan of a Jakarta-sized
    city (sources are never opened: the benchmark publishes the frames)."""
    cameras = []
    for index in range(count):
        kelurahan = index % KELURAHAN
        cameras.append(
            {
                "id": f"city-{index:04d}",
                "source_url": "/bench/simulated.mp4",
                "region": {
                    "city": "Jakarta",
                    "kecamatan": f"kec-{kelurahan % KECAMATAN:02d}",
                    "kelurahan": f"kel-{kelurahan:03d}",
                },
                "sample_interval_s": interval_s,
            }
        )
    return cameras


@dataclass
class Captures:
    """Capture times per camera, and when each became visible in ClickHouse."""

    times_ms: dict[str, list[int]] = field(default_factory=dict)
    seen_upto: dict[str, int] = field(default_factory=dict)
    latencies_s: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, camera: str, at_ms: int) -> None:
        with self.lock:
            self.times_ms.setdefault(camera, []).append(at_ms)

    def visible(self, camera: str, newest_ms: int, now_ms: int, after_ms: int) -> None:
        """Frames of ``camera`` up to ``newest_ms`` are in ClickHouse at
        ``now_ms``; frames captured before ``after_ms`` are warm-up."""
        with self.lock:
            times = self.times_ms.get(camera, [])
            start = self.seen_upto.get(camera, 0)
            end = bisect.bisect_right(times, newest_ms)
            for at_ms in times[start:end]:
                if at_ms >= after_ms:
                    self.latencies_s.append((now_ms - at_ms) / 1000)
            self.seen_upto[camera] = max(start, end)

    def unseen(self, after_ms: int) -> int:
        with self.lock:
            return sum(
                sum(1 for t in times[self.seen_upto.get(c, 0) :] if t >= after_ms)
                for c, times in self.times_ms.items()
            )


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _demo_jpeg(video: Path, max_side_px: int) -> bytes:
    capture = cv2.VideoCapture(str(video))
    ok, image = capture.read()
    capture.release()
    if not ok:
        raise RuntimeError(f"cannot read a frame of {video}")
    scale = max_side_px / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, None, fx=scale, fy=scale)
    return bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1])


def _record_detections(config: PantauConfig, video: Path, path: Path) -> int:
    from inference.detectors import build_analyzer
    from inference.replay import record
    from producers.bench import load_frames

    analyzer = build_analyzer(config.pipeline, config.cache_dir)
    recorded = record(analyzer, load_frames(video, RECORDED_FRAMES), path)
    return sum(len(analysis.objects) for analysis in recorded)


class Simulator(threading.Thread):
    """Publishes each camera's frame every interval, spread evenly."""

    def __init__(
        self,
        *,
        config: PantauConfig,
        bootstrap: str,
        cameras: list[str],
        interval_s: float,
        jpeg: bytes,
        captures: Captures,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="city-simulator", daemon=True)
        kafka = config.kafka
        conf = producer_config(kafka, bootstrap, "pantau-bench-city")
        conf["linger.ms"] = 20
        self._producer = Producer(conf)
        topic = topic_name(kafka, FRAMES)
        self._codec = AvroCodec(topic, FRAMES.record_type, make_resolver(kafka))
        self._cameras = cameras
        self._interval_s = interval_s
        self._jpeg = jpeg
        self._captures = captures
        self._halt = stop
        self.published = 0
        self.failed = 0

    def _delivered(self, error: Any, _message: Any) -> None:
        if error is not None:
            self.failed += 1

    def run(self) -> None:
        count = len(self._cameras)
        started = time.monotonic()
        sequence = [0] * count
        while not self._halt.is_set():
            elapsed = time.monotonic() - started
            for index, camera in enumerate(self._cameras):
                due = (index / count + sequence[index]) * self._interval_s
                if due > elapsed:
                    continue
                now_ms = int(time.time() * 1000)
                frame: Frame = {
                    "camera_id": camera,
                    "frame_seq": sequence[index],
                    "captured_at_ms": now_ms,
                    "published_at_ms": now_ms,
                    "width_px": 640,
                    "height_px": 480,
                    "content_type": "image/jpeg",
                    "image": self._jpeg,
                }
                sequence[index] += 1
                while True:
                    try:
                        self._producer.produce(
                            self._codec.topic,
                            key=camera.encode(),
                            value=self._codec.encode(frame),
                            on_delivery=self._delivered,
                        )
                        break
                    except BufferError:
                        self._producer.poll(0.05)
                self._captures.add(camera, now_ms)
                self.published += 1
            self._producer.poll(0)
            self._halt.wait(0.02)
        self._producer.flush(60)


@dataclass(frozen=True)
class LagSample:
    at_s: float
    lag: dict[str, int]


def _spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, *args],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def bench_city(
    config: PantauConfig,
    bootstrap: str,
    *,
    cameras: int,
    interval_s: float,
    duration_s: float,
    warmup_s: float,
    inference_workers: int,
    windows_workers: int,
    video: Path,
    partitions: int = 6,
) -> str:
    """Run the simulation and return the report."""
    with tempfile.TemporaryDirectory(prefix="pantau-bench-city-") as tmp:
        work = Path(tmp)
        clickhouse = EmbeddedClickHouse(work / "clickhouse", free_port())
        clickhouse.start()
        try:
            return _run(
                config,
                bootstrap,
                clickhouse,
                work,
                cameras=cameras,
                interval_s=interval_s,
                duration_s=duration_s,
                warmup_s=warmup_s,
                inference_workers=inference_workers,
                windows_workers=windows_workers,
                video=video,
                partitions=partitions,
            )
        finally:
            clickhouse.stop()


def _run(
    base: PantauConfig,
    bootstrap: str,
    clickhouse: EmbeddedClickHouse,
    work: Path,
    *,
    cameras: int,
    interval_s: float,
    duration_s: float,
    warmup_s: float,
    inference_workers: int,
    windows_workers: int,
    video: Path,
    partitions: int,
) -> str:
    prefix = f"bench-city-{uuid.uuid4().hex[:6]}."
    config_path = work / "pantau.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(work / "state"),
                "cache_dir": str(base.cache_dir.resolve()),
                "kafka": {
                    "bootstrap_servers": bootstrap,
                    "topic_prefix": prefix,
                    "default_partitions": partitions,
                },
                "clickhouse": {"url": clickhouse.url, "detections_ttl_days": None},
                "pipeline": base.pipeline.model_dump(mode="json"),
                "cameras": city_cameras(cameras, interval_s),
            }
        )
    )
    config = load_config(config_path)
    ensure_topics(config.kafka, bootstrap)
    recorded_path = work / "recorded.pkl"
    log.info("recording detections of the real models frames=%s", RECORDED_FRAMES)
    objects = _record_detections(config, video, recorded_path)
    jpeg = _demo_jpeg(video, 640)
    logs = work / "logs"
    logs.mkdir()
    cli = ["-m", "pantau.cli", "--config", str(config_path)]
    processes = [_spawn([*cli, "sink", "run"], logs / "sink.log")]
    processes += [
        _spawn([*cli, "windows", "run"], logs / f"windows-{n}.log")
        for n in range(windows_workers)
    ]
    processes += [
        _spawn(
            [
                "-m",
                "inference.replay_worker",
                "--config",
                str(config_path),
                "--recorded",
                str(recorded_path),
            ],
            logs / f"inference-{n}.log",
        )
        for n in range(inference_workers)
    ]
    client = connect(config.clickhouse, clickhouse.url)
    probe = ProgressProbe(
        config,
        bootstrap,
        client,
        {
            "pantau-inference": FRAMES,
            f"{prefix}{APP_ID}": DETECTIONS,
            "pantau-sink-windows": WINDOWS,
        },
    )
    captures = Captures()
    stop = threading.Event()
    simulator = Simulator(
        config=config,
        bootstrap=bootstrap,
        cameras=[camera.id for camera in config.cameras],
        interval_s=interval_s,
        jpeg=jpeg,
        captures=captures,
        stop=stop,
    )
    lag_samples: list[LagSample] = []
    try:
        # Workers join their groups before the cameras start.
        _wait_for_tables(client, config.clickhouse.database, processes, logs)
        log.info(
            "simulating cameras=%s interval_s=%s duration_s=%s",
            cameras,
            interval_s,
            duration_s,
        )
        started = time.monotonic()
        warm_ms = int(time.time() * 1000 + warmup_s * 1000)
        simulator.start()
        counted_at_warm: int | None = None
        counted_at_end = 0
        next_lag = started
        end = started + duration_s
        while time.monotonic() < end + 60:
            now = time.monotonic()
            if now >= end and not stop.is_set():
                counted_at_end = _frames_counted(client, config.clickhouse.database)
                stop.set()
                simulator.join(120)
                log.info("cameras stopped; waiting for the pipeline to drain")
            _poll_visibility(client, config.clickhouse.database, captures, warm_ms)
            if counted_at_warm is None and now - started >= warmup_s:
                counted_at_warm = _frames_counted(client, config.clickhouse.database)
            if now >= next_lag:
                snapshot = probe.snapshot()
                lag_samples.append(LagSample(now - started, dict(snapshot.lag)))
                log.info("bench city t=%.0fs %s", now - started, snapshot.line())
                next_lag += LAG_EVERY_S
                if stop.is_set() and snapshot.drained:
                    break
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"a worker exited with code {process.returncode}: "
                        f"{process.args!r}; see its log in {logs}"
                    )
            time.sleep(POLL_S)
        counted_all = _frames_counted(client, config.clickhouse.database)
    finally:
        stop.set()
        probe.close()
        _stop_all(processes)
    offered_s = duration_s - warmup_s
    counted_window = counted_at_end - (counted_at_warm or 0)
    return _report(
        cameras=cameras,
        interval_s=interval_s,
        duration_s=duration_s,
        warmup_s=warmup_s,
        inference_workers=inference_workers,
        windows_workers=windows_workers,
        partitions=partitions,
        objects=objects,
        offered=simulator.published,
        failed=simulator.failed,
        counted=counted_all,
        counted_after_warmup=counted_window,
        offered_s=offered_s,
        latencies_s=captures.latencies_s,
        unseen=captures.unseen(warm_ms),
        lag_samples=lag_samples,
    )


def _wait_for_tables(
    client: Any,
    database: str,
    processes: list[subprocess.Popen[bytes]],
    logs: Path,
) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(
                    f"a worker exited at start with code {process.returncode}: "
                    f"{process.args!r}; see its log in {logs}"
                )
        try:
            if client.command(f"EXISTS TABLE {database}.windows_daily_totals") == 1:
                time.sleep(10)  # consumer groups settle
                return
        except Exception as error:  # noqa: BLE001 (any answer but yes is a wait)
            log.debug("waiting for the sink's tables: %s", error)
        time.sleep(1)
    raise RuntimeError(f"the sink did not create its tables in 180 s; see {logs}")


def _frames_counted(client: Any, database: str) -> int:
    rows = client.query(
        f"SELECT sum(frames) FROM {database}.windows FINAL "
        "WHERE scope_level = 'CAMERA' AND window_kind = 'TUMBLING'"
    ).result_rows
    return int(rows[0][0] or 0)


def _poll_visibility(
    client: Any, database: str, captures: Captures, warm_ms: int
) -> None:
    now_ms = int(time.time() * 1000)
    rows = client.query(
        "SELECT scope_id, toUnixTimestamp64Milli(max(last_captured_at)) "
        f"FROM {database}.windows WHERE scope_level = 'CAMERA' "
        "AND window_kind = 'TUMBLING' GROUP BY scope_id"
    ).result_rows
    for camera, newest_ms in rows:
        captures.visible(str(camera), int(newest_ms), now_ms, warm_ms)


def _report(
    *,
    cameras: int,
    interval_s: float,
    duration_s: float,
    warmup_s: float,
    inference_workers: int,
    windows_workers: int,
    partitions: int,
    objects: int,
    offered: int,
    failed: int,
    counted: int,
    counted_after_warmup: int,
    offered_s: float,
    latencies_s: list[float],
    unseen: int,
    lag_samples: list[LagSample],
) -> str:
    offered_rate = cameras / interval_s
    sustained = counted_after_warmup / offered_s if offered_s > 0 else 0.0
    lines = [
        f"city benchmark: {cameras} cameras every {interval_s:g} s for "
        f"{duration_s:g} s (first {warmup_s:g} s warm-up), {partitions} "
        f"partitions, {inference_workers} inference and {windows_workers} windows "
        f"worker(s), detections replayed ({objects} objects in "
        f"{RECORDED_FRAMES} recorded frames)",
        f"  frames offered                  {offered_rate:10.1f} frames/s "
        f"({offered} published, {failed} failed)",
        f"  frames counted in ClickHouse    {sustained:10.1f} frames/s "
        f"between warm-up and the end ({counted} in all after draining)",
        f"  ratio counted / offered          {sustained / offered_rate:10.3f}",
        f"  capture to window row, p50      {_percentile(latencies_s, 0.50):10.1f} s",
        f"  capture to window row, p95      {_percentile(latencies_s, 0.95):10.1f} s",
        f"  capture to window row, p99      {_percentile(latencies_s, 0.99):10.1f} s",
        f"  frames measured / not in ClickHouse when the run ended "
        f"{len(latencies_s)} / {unseen}",
        "  consumer lag over time (messages behind):",
    ]
    groups = list(lag_samples[0].lag) if lag_samples else []
    names = {
        "pantau-inference": "inference",
        "pantau-sink-windows": "sink",
    }
    header = "    t_s " + "".join(f"{names.get(g, 'windows'):>12}" for g in groups)
    lines.append(header)
    for sample in lag_samples:
        lines.append(
            f"    {sample.at_s:4.0f}"
            + "".join(f"{sample.lag.get(g, -1):>12}" for g in groups)
        )
    if latencies_s:
        lines.append(
            f"  latency mean {statistics.fmean(latencies_s):.1f} s; resolution "
            f"{POLL_S:g} s (ClickHouse polled every {POLL_S:g} s)"
        )
    return "\n".join(lines)
