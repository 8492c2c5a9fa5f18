"""``pantau up``: the engines, the topics, the tables and every worker on one
machine, with progress output and an orderly shutdown."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from infra import embedded
from infra.topics_admin import ensure_topics
from pantau.clickhouse import connect
from pantau.config import PantauConfig
from pantau.progress import ProgressProbe, Snapshot
from pantau.runtime import install_stop_handlers
from pantau.services import (
    INFERENCE_GROUP,
    SINK_GROUP,
    prepare_clickhouse,
    sink_group,
)
from schemas.topics import ALERTS, CAMERA_STATUS, DETECTIONS, FRAMES, WINDOWS
from stream_apps.alerting import ALERTING_GROUP
from stream_apps.windows import APP_ID

log = logging.getLogger("pantau.up")

# Downstream first, so every stage is listening before frames arrive.
_START_ORDER = (
    "sink",
    "web",
    "webhooks",
    "alerts",
    "windows",
    "inference",
    "producers",
)
_STOP_WAIT_S = 30.0


@dataclass(frozen=True)
class UpOptions:
    """What ``pantau up`` was asked to do."""

    config_args: Sequence[str]
    duration_s: float | None
    max_frames: int | None
    progress_interval_s: float
    drain_timeout_s: float
    log_level: str
    kafka_port: int
    clickhouse_port: int


class WorkerFailedError(RuntimeError):
    """A worker process exited on its own while the pipeline was running."""


def _spawn(role: str, options: UpOptions) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "pantau.cli",
        "--log-level",
        options.log_level,
        *options.config_args,
        role,
        "run",
    ]
    if role == "producers" and options.max_frames is not None:
        command += ["--max-frames", str(options.max_frames)]
    log.info("starting worker role=%s", role)
    # Own process group: a Ctrl-C in the terminal reaches only this supervisor,
    # which then stops the workers in order.
    return subprocess.Popen(command, process_group=0)


def _stop_worker(role: str, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            log.warning("worker did not stop in time, killing role=%s", role)
            process.kill()
            process.wait()
    log.info("worker stopped role=%s exit_code=%s", role, process.returncode)


def run_up(config: PantauConfig, options: UpOptions) -> Snapshot:
    """Run the whole pipeline until Ctrl-C, SIGTERM, ``duration_s`` or (with
    ``max_frames``) until every frame has landed; returns the last progress."""
    stop = threading.Event()
    install_stop_handlers(stop, "up")
    infra = embedded.up(
        config, kafka_port=options.kafka_port, clickhouse_port=options.clickhouse_port
    )
    log.info(
        "engines ready started=%s already_running=%s external=%s",
        infra.started,
        infra.already_running,
        infra.external,
    )
    workers: dict[str, subprocess.Popen[bytes]] = {}
    probe: ProgressProbe | None = None
    try:
        endpoints = embedded.resolve_endpoints(config)
        ensure_topics(config.kafka, endpoints.bootstrap_servers)
        prepare_clickhouse(config, endpoints)
        clickhouse = connect(config.clickhouse, endpoints.clickhouse_url)
        probe = ProgressProbe(
            config,
            endpoints.bootstrap_servers,
            clickhouse,
            {
                INFERENCE_GROUP: FRAMES,
                f"{config.kafka.topic_prefix}{APP_ID}": DETECTIONS,
                SINK_GROUP: WINDOWS,
                sink_group("detections"): DETECTIONS,
                sink_group("camera_status"): CAMERA_STATUS,
                ALERTING_GROUP: WINDOWS,
                sink_group("alerts"): ALERTS,
            },
        )
        for role in _START_ORDER:
            if role == "web" and not config.web.enabled:
                continue
            workers[role] = _spawn(role, options)
            if role == "web":
                print(
                    f"monitoring page: http://{config.web.host}:{config.web.port}/",
                    flush=True,
                )
        _watch(workers, probe, options, stop)
        _stop_worker("producers", workers.pop("producers"))
        return _drain(workers, probe, options)
    finally:
        for role in reversed(_START_ORDER):
            if role in workers:
                _stop_worker(role, workers[role])
        if probe is not None:
            probe.close()
        if infra.started:
            log.info("stopping engines started by this run engines=%s", infra.started)
            embedded.down(config, only=infra.started)


def _check_alive(workers: dict[str, subprocess.Popen[bytes]], *, but: str = "") -> None:
    for role, process in workers.items():
        if role != but and process.poll() is not None:
            raise WorkerFailedError(
                f"worker {role} exited with code {process.returncode}; see its log "
                "lines above"
            )


def _watch(
    workers: dict[str, subprocess.Popen[bytes]],
    probe: ProgressProbe,
    options: UpOptions,
    stop: threading.Event,
) -> None:
    started = time.monotonic()
    while not stop.wait(options.progress_interval_s):
        last = probe.snapshot()
        print(f"[{time.monotonic() - started:6.0f}s] {last.line()}", flush=True)
        producers = workers["producers"]
        if producers.poll() is not None:
            if producers.returncode != 0:
                raise WorkerFailedError(
                    f"worker producers exited with code {producers.returncode}"
                )
            log.info("producers finished, draining the pipeline")
            break
        _check_alive(workers, but="producers")
        elapsed_s = time.monotonic() - started
        if options.duration_s is not None and elapsed_s >= options.duration_s:
            log.info("duration reached duration_s=%s", options.duration_s)
            break


def _drain(
    workers: dict[str, subprocess.Popen[bytes]],
    probe: ProgressProbe,
    options: UpOptions,
) -> Snapshot:
    """Wait until every stage has consumed what was produced (or the timeout)."""
    deadline = time.monotonic() + options.drain_timeout_s
    last = probe.snapshot()
    while time.monotonic() < deadline:
        _check_alive(workers)
        last = probe.snapshot()
        print(f"[drain] {last.line()}", flush=True)
        # Groups are read upstream first, so all-zero lag means every frame
        # produced before the producers stopped has reached ClickHouse.
        if last.drained:
            break
        time.sleep(1.0)
    else:
        log.warning("drain timed out; stopping with work in flight: %s", last.line())
    return last
