"""``pantau bench soak``: the whole embedded pipeline on real footage while a
fault injector restarts the broker, kills (SIGKILL) an inference worker, a
windows worker and the sink, and takes ClickHouse away for a while.

At the end every frame the samplers published must have one detection event,
and the tumbling windows in ClickHouse (every camera and region, read with
FINAL) must equal the windows summed straight from those events
(``reference_windows``): what an undisturbed run over the same input gives.
The report lists what was injected and what was lost (the target is nothing).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from infra.clickhouse_server import EmbeddedClickHouse
from infra.kafka_broker import EmbeddedKafka
from infra.kafka_dist import ensure_kafka_libs
from infra.ports import free_port, free_port_pair
from infra.topics_admin import ensure_topics
from pantau.clickhouse import connect
from pantau.config import PantauConfig
from pantau.config_loader import load_config
from pantau.kafka import make_consumer, topic_name
from pantau.progress import ProgressProbe
from schemas.codec import AvroCodec
from schemas.records import DetectionEvent
from schemas.registry import LocalResolver
from schemas.topics import DETECTIONS, FRAMES, WINDOWS
from stream_apps.alerting import read_to_end
from stream_apps.reference_windows import COMPARED, WindowKey, tumbling_windows
from stream_apps.windows import APP_ID

log = logging.getLogger("pantau.bench")

CLICKHOUSE_DOWN_S = 20.0
_ROLES = ("sink", "windows", "inference", "producers")


@dataclass
class Fault:
    """One injected fault and how long the pipeline took to take it."""

    at_s: float
    what: str
    took_s: float = 0.0


class Workers:
    """The worker processes of the run, by role, restartable."""

    def __init__(self, config_path: Path, logs: Path) -> None:
        self._config_path = config_path
        self._logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._starts: dict[str, int] = {}
        self._log_paths: dict[str, Path] = {}

    def start(self, role: str) -> None:
        count = self._starts.get(role, 0)
        self._starts[role] = count + 1
        log_path = self._logs / f"{role}-{count}.log"
        self._log_paths[role] = log_path
        with log_path.open("wb") as output:
            self.processes[role] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pantau.cli",
                    "--config",
                    str(self._config_path),
                    role,
                    "run",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def kill(self, role: str) -> None:
        process = self.processes[role]
        process.kill()
        process.wait(30)

    def check(self) -> None:
        for role, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"worker {role} exited with code {process.returncode}; see "
                    f"{self._logs}"
                )

    def complaints(self, per_role: int = 4) -> str:
        """The last warnings and errors of each role's latest log, indented,
        for a report that has to say why the run stalled."""
        lines = []
        for path in sorted(self._log_paths.values()):
            text = path.read_text(errors="replace") if path.exists() else ""
            found = [
                line[:300]
                for line in text.splitlines()
                if " WARNING " in line or " ERROR " in line
            ]
            lines.append(f"  {path.name}: {len(found)} warnings and errors")
            lines += [f"    {line}" for line in found[-per_role:]]
        return "\n".join(lines)

    def stop(self, role: str, timeout_s: float = 60) -> None:
        process = self.processes.pop(role)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()

    def stop_all(self) -> None:
        for role in list(self.processes):
            self.stop(role)


def bench_soak(
    base: PantauConfig,
    *,
    minutes: float,
    cameras: int,
    interval_s: float,
    video: Path,
    keep_dir: Path | None = None,
) -> str:
    """Run the soak and return the report; raises if anything was lost."""
    with tempfile.TemporaryDirectory(prefix="pantau-soak-") as tmp:
        work = keep_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        kafka_port = free_port_pair()
        broker = EmbeddedKafka(
            work / "kafka",
            ensure_kafka_libs(base.cache_dir),
            kafka_port,
            kafka_port + 1,
        )
        clickhouse = EmbeddedClickHouse(
            work / "clickhouse",
            free_port(exclude={kafka_port, kafka_port + 1}),
        )
        broker.start()
        clickhouse.start()
        try:
            return _soak(
                base,
                broker,
                clickhouse,
                work,
                minutes=minutes,
                cameras=cameras,
                interval_s=interval_s,
                video=video,
            )
        finally:
            if clickhouse.is_running():
                clickhouse.stop()
            broker.stop()


def _write_config(
    base: PantauConfig,
    work: Path,
    broker: EmbeddedKafka,
    clickhouse: EmbeddedClickHouse,
    *,
    cameras: int,
    interval_s: float,
    video: Path,
) -> Path:
    path = work / "pantau.yaml"
    pipeline = base.pipeline.model_dump(mode="json")
    pipeline["publish_annotated"] = False
    path.write_text(
        yaml.safe_dump(
            {
                "state_dir": str(work / "state"),
                "cache_dir": str(base.cache_dir.resolve()),
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "topic_prefix": f"soak-{uuid.uuid4().hex[:6]}.",
                    "default_partitions": 2,
                },
                "clickhouse": {"url": clickhouse.url, "detections_ttl_days": None},
                "pipeline": pipeline,
                "cameras": [
                    {
                        "id": f"soak-{index:02d}",
                        "source_url": str(video),
                        "loop": True,
                        "region": {
                            "city": "Jakarta",
                            "kecamatan": f"kec-{index % 2}",
                            "kelurahan": f"kel-{index}",
                        },
                        "sample_interval_s": interval_s,
                    }
                    for index in range(cameras)
                ],
            }
        )
    )
    return path


def _soak(
    base: PantauConfig,
    broker: EmbeddedKafka,
    clickhouse: EmbeddedClickHouse,
    work: Path,
    *,
    minutes: float,
    cameras: int,
    interval_s: float,
    video: Path,
) -> str:
    config_path = _write_config(
        base,
        work,
        broker,
        clickhouse,
        cameras=cameras,
        interval_s=interval_s,
        video=video,
    )
    config = load_config(config_path)
    ensure_topics(config.kafka, broker.bootstrap_servers)
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    workers = Workers(config_path, logs)
    for role in _ROLES:
        workers.start(role)
    duration_s = minutes * 60
    started = time.monotonic()
    faults: list[Fault] = []

    def restart(role: str) -> Callable[[], str]:
        def act() -> str:
            workers.kill(role)
            time.sleep(3)
            workers.start(role)
            return f"SIGKILL the {role} worker, restarted 3 s later"

        return act

    def broker_restart() -> str:
        broker.restart()
        return "restart the Kafka broker"

    def clickhouse_outage() -> str:
        clickhouse.stop()
        time.sleep(CLICKHOUSE_DOWN_S)
        clickhouse.start()
        return f"ClickHouse unavailable for {CLICKHOUSE_DOWN_S:g} s"

    schedule: list[tuple[float, Callable[[], str]]] = [
        (0.15, restart("inference")),
        (0.30, broker_restart),
        (0.45, restart("windows")),
        (0.60, restart("sink")),
        (0.75, clickhouse_outage),
    ]
    try:
        for share, act in schedule:
            _wait(started + share * duration_s, workers)
            at_s = time.monotonic() - started
            log.info("soak: injecting a fault at t=%.0fs", at_s)
            before = time.monotonic()
            what = act()
            faults.append(Fault(at_s, what, time.monotonic() - before))
            log.info("soak: injected what=%r", what)
        _wait(started + duration_s, workers)
        workers.stop("producers")
        drained_s = _drain(config, broker, clickhouse, workers)
    finally:
        workers.stop_all()
    return _verify(
        config,
        broker,
        clickhouse,
        faults=faults,
        duration_s=duration_s,
        drained_s=drained_s,
    )


def _wait(until: float, workers: Workers) -> None:
    while time.monotonic() < until:
        workers.check()
        time.sleep(1)


def _frames_counted(config: PantauConfig, clickhouse: EmbeddedClickHouse) -> int:
    client = connect(config.clickhouse, clickhouse.url)
    rows = client.query(
        f"SELECT sum(frames) FROM {config.clickhouse.database}.windows FINAL "
        "WHERE window_kind = 'TUMBLING'"
    ).result_rows
    return int(rows[0][0] or 0)


def _drain(
    config: PantauConfig,
    broker: EmbeddedKafka,
    clickhouse: EmbeddedClickHouse,
    workers: Workers,
    timeout_s: float = 300,
) -> float:
    """Wait until every group caught up and the windows stopped changing."""
    started = time.monotonic()
    probe = ProgressProbe(
        config,
        broker.bootstrap_servers,
        connect(config.clickhouse, clickhouse.url),
        {
            "pantau-inference": FRAMES,
            f"{config.kafka.topic_prefix}{APP_ID}": DETECTIONS,
            "pantau-sink-windows": WINDOWS,
            "pantau-sink-detections": DETECTIONS,
        },
    )
    try:
        last = -1
        steady = 0
        position = "not read yet"
        while time.monotonic() - started < timeout_s:
            workers.check()
            snapshot = probe.snapshot()
            counted = _frames_counted(config, clickhouse)
            steady = steady + 1 if snapshot.drained and counted == last else 0
            last = counted
            position = snapshot.line()
            log.info("soak: draining %s", position)
            # Region windows follow each partition's share at every heartbeat:
            # a few steady polls let the last shares arrive.
            if steady >= 4:
                return time.monotonic() - started
            time.sleep(5)
    finally:
        probe.close()
    raise RuntimeError(
        f"the pipeline did not drain within {timeout_s:.0f} s: expected every "
        f"consumer group caught up and the frames counted steady, got {position}\n"
        f"{workers.complaints()}"
    )


def _read(
    consumer_config: tuple[PantauConfig, str], topic: str, record_type: str
) -> list[dict[str, Any]]:
    config, bootstrap = consumer_config
    consumer = make_consumer(config.kafka, bootstrap, "pantau-soak-check", "soak")
    codec = AvroCodec(topic, record_type, LocalResolver())
    try:
        return [codec.decode(m.value()) for m in read_to_end(consumer, topic)]
    finally:
        consumer.close()


def _verify(
    config: PantauConfig,
    broker: EmbeddedKafka,
    clickhouse: EmbeddedClickHouse,
    *,
    faults: list[Fault],
    duration_s: float,
    drained_s: float,
) -> str:
    source = (config, broker.bootstrap_servers)
    frames = _read(source, topic_name(config.kafka, FRAMES), "frame")
    published = {(f["camera_id"], f["frame_seq"]) for f in frames}
    events = cast(
        list[DetectionEvent],
        _read(source, topic_name(config.kafka, DETECTIONS), "detection_event"),
    )
    analysed = {(e["camera_id"], e["frame_seq"]) for e in events}
    distinct_events = {e["event_id"] for e in events}
    reference = tumbling_windows(events, config.pipeline.window_size_s * 1000)
    landed = _clickhouse_windows(config, clickhouse)
    missing = sorted(set(reference) - set(landed))
    extra = sorted(set(landed) - set(reference))
    differing = [
        key
        for key in set(reference) & set(landed)
        if any(reference[key][name] != landed[key][name] for name in COMPARED)
    ]
    frames_lost = len(published - analysed)
    lines = [
        f"soak: {len(config.cameras)} cameras of real footage for "
        f"{duration_s / 60:g} min, drained {drained_s:.0f} s after the samplers "
        "stopped",
        "  faults injected:",
        *(f"    t={f.at_s:5.0f}s  {f.what} (took {f.took_s:.0f} s)" for f in faults),
        f"  frames published                 {len(published):>8}",
        f"  frames without a detection event {frames_lost:>8}",
        f"  detection events (distinct)      {len(distinct_events):>8} "
        f"({len(events) - len(distinct_events)} redelivered)",
        f"  tumbling windows, undisturbed    {len(reference):>8}",
        f"  tumbling windows in ClickHouse   {len(landed):>8}",
        f"  windows missing / extra / differing {len(missing)} / {len(extra)} / "
        f"{len(differing)}",
    ]
    lost = frames_lost + len(missing) + len(extra) + len(differing)
    lines.append(f"  lost: {'nothing' if lost == 0 else lost}")
    for key in (missing + extra + differing)[:10]:
        lines.append(
            f"    {key}: undisturbed={reference.get(key)} clickhouse={landed.get(key)}"
        )
    return "\n".join(lines)


def _clickhouse_windows(
    config: PantauConfig, clickhouse: EmbeddedClickHouse
) -> dict[WindowKey, dict[str, Any]]:
    client = connect(config.clickhouse, clickhouse.url)
    result = client.query(
        "SELECT scope_level, scope_id, toUnixTimestamp64Milli(window_start), "
        f"{', '.join(COMPARED)} "
        f"FROM {config.clickhouse.database}.windows FINAL "
        "WHERE window_kind = 'TUMBLING'"
    )
    windows: dict[WindowKey, dict[str, Any]] = {}
    for row in result.result_rows:
        values = dict(zip(COMPARED, row[3:], strict=True))
        values["vehicles_sum"] = {
            name: count for name, count in values["vehicles_sum"].items() if count
        }
        windows[(str(row[0]), str(row[1]), int(row[2]))] = values
    return windows
