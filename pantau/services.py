"""Build and run each long-running Pantau service from the configuration.

Each ``run_*`` function blocks until SIGINT/SIGTERM (or its own end), then flushes
what it produced and commits what it finished.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from clickhouse_connect.driver.exceptions import ClickHouseError
from confluent_kafka import Producer
from prometheus_client import start_http_server

from infra.embedded import Endpoints
from infra.topics_admin import ensure_changelog_topics, ensure_topics
from pantau.clickhouse import ClickHouseUnavailableError, connect
from pantau.config import CameraConfig, PantauConfig
from pantau.config_watch import ConfigWatcher
from pantau.dead_letter import DeadLetterPublisher
from pantau.delivery import DeliveryTracker
from pantau.errors import UsageError
from pantau.kafka import (
    make_consumer,
    make_producer,
    make_resolver,
    producer_config,
    topic_name,
)
from pantau.runtime import install_stop_handlers
from schemas.codec import AvroCodec
from schemas.topics import (
    ALERTS,
    ANNOTATED_FRAMES,
    CAMERA_STATUS,
    DETECTIONS,
    FRAMES,
    WINDOWS,
    WINDOWS_REPARTITION,
    TopicSpec,
)
from stream_apps.clickhouse_tables import ensure_tables

if TYPE_CHECKING:
    import pyarrow as pa

    from inference.analysis import Analyzer
    from inference.worker import InferenceWorker
    from producers.publisher import FramePublisher
    from producers.sampler import CameraSampler
    from stream_apps.sink import ClickHouseSink

log = logging.getLogger("pantau.services")

INFERENCE_GROUP = "pantau-inference"
SINK_GROUP = "pantau-sink-windows"


def client_id(service: str) -> str:
    return f"pantau-{service}-{socket.gethostname()}-{os.getpid()}"


def serve_metrics(port: int | None) -> None:
    if port is not None:
        start_http_server(port, addr="127.0.0.1")
        log.info("metrics served url=http://127.0.0.1:%s/metrics", port)


def build_publisher(
    config: PantauConfig, endpoints: Endpoints, stop: threading.Event
) -> FramePublisher:
    """The frame and camera-status publisher of one producer process."""
    from producers.publisher import FramePublisher

    kafka = config.kafka
    producer_conf = producer_config(
        kafka, endpoints.bootstrap_servers, client_id("producers")
    )
    producer_conf["queue.buffering.max.kbytes"] = config.producers.buffer_max_kbytes
    resolver = make_resolver(kafka)
    return FramePublisher(
        Producer(producer_conf),
        AvroCodec(topic_name(kafka, FRAMES), "frame", resolver),
        AvroCodec(topic_name(kafka, CAMERA_STATUS), "camera_status", resolver),
        config.producers.max_frame_bytes,
        stop,
    )


def build_samplers(
    config: PantauConfig,
    endpoints: Endpoints,
    stop: threading.Event,
    *,
    camera_ids: list[str] | None = None,
    shard: tuple[int, int] = (0, 1),
    max_frames: int | None = None,
) -> tuple[FramePublisher, list[CameraSampler]]:
    """One publisher and a sampler per selected camera, not yet running."""
    from producers.sampler import CameraSampler, SamplerSettings
    from producers.shard import select_shard

    kafka = config.kafka
    ensure_topics(kafka, endpoints.bootstrap_servers)
    cameras = [c for c in config.cameras if camera_ids is None or c.id in camera_ids]
    cameras = select_shard(cameras, *shard)
    if not cameras:
        raise UsageError(
            f"no camera to sample in shard {shard[0]}/{shard[1]}: expected ids "
            f"among {[c.id for c in config.cameras]}, got {camera_ids or 'all'}"
        )
    publisher = build_publisher(config, endpoints, stop)
    samplers = [
        CameraSampler(
            camera=camera,
            publisher=publisher,
            settings=SamplerSettings.for_camera(config, camera),
            stop=stop,
            max_frames=max_frames,
        )
        for camera in cameras
    ]
    return publisher, samplers


def run_samplers(
    publisher: FramePublisher, samplers: list[CameraSampler], flush_timeout_s: float
) -> None:
    """Run every sampler in its own thread, serve the producer's callbacks, then
    flush what is still buffered."""
    threads = [
        threading.Thread(target=sampler.run, name="sampler", daemon=True)
        for sampler in samplers
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        publisher.producer.poll(0.2)
    remaining = publisher.producer.flush(flush_timeout_s)
    log.info(
        "producers stopped cameras=%s delivered=%s failed=%s undelivered=%s",
        len(samplers),
        publisher.delivered,
        publisher.failed,
        remaining,
    )


def run_producers(
    config: PantauConfig,
    endpoints: Endpoints,
    *,
    camera_ids: list[str] | None = None,
    shard: tuple[int, int] = (0, 1),
    max_frames: int | None = None,
    metrics_port: int | None = None,
    watcher: ConfigWatcher | None = None,
) -> None:
    """Sample the configured cameras of this shard and publish their frames.

    With a ``watcher`` (and no ``max_frames``) the process follows the
    configuration file: cameras added to this shard start, removed ones stop
    and changed ones restart, while every other camera goes on."""
    from producers.pool import SamplerPool
    from producers.sampler import CameraSampler, SamplerSettings
    from producers.shard import select_shard

    stop = threading.Event()
    install_stop_handlers(stop, "producers")
    serve_metrics(metrics_port)
    following = watcher is not None and max_frames is None
    if following:
        # An empty shard is fine: cameras may be added to it later.
        ensure_topics(config.kafka, endpoints.bootstrap_servers)
        publisher = build_publisher(config, endpoints, stop)
    else:
        publisher, _ = build_samplers(
            config,
            endpoints,
            stop,
            camera_ids=camera_ids,
            shard=shard,
            max_frames=max_frames,
        )
    settings_of = {"config": config}

    def make_sampler(
        camera: CameraConfig, camera_stop: threading.Event
    ) -> CameraSampler:
        return CameraSampler(
            camera=camera,
            publisher=publisher,
            settings=SamplerSettings.for_camera(settings_of["config"], camera),
            stop=camera_stop,
            max_frames=max_frames,
        )

    def selected(current: PantauConfig) -> list[CameraConfig]:
        cameras = [
            c for c in current.cameras if camera_ids is None or c.id in camera_ids
        ]
        return select_shard(cameras, *shard)

    pool = SamplerPool(make_sampler, stop)
    pool.apply(selected(config))
    log.info(
        "producers starting shard=%s/%s cameras=%s following_config=%s",
        *shard,
        len(pool.camera_ids),
        following,
    )
    while not stop.is_set() and (following or pool.alive()):
        publisher.producer.poll(0.2)
        if watcher is not None and following:
            changed = watcher.poll()
            if changed is not None:
                settings_of["config"] = changed
                pool.apply(selected(changed))
    pool.follow()
    pool.stop_all(timeout_s=30.0)
    remaining = publisher.producer.flush(60.0)
    log.info(
        "producers stopped cameras=%s delivered=%s failed=%s undelivered=%s",
        len(pool.camera_ids),
        publisher.delivered,
        publisher.failed,
        remaining,
    )


def build_inference_worker(
    config: PantauConfig,
    endpoints: Endpoints,
    stop: threading.Event,
    watcher: ConfigWatcher | None = None,
    analyzer: Analyzer | None = None,
) -> tuple[InferenceWorker, DeliveryTracker]:
    """The inference worker and the tracker of its producer, not yet running;
    the configured models unless ``analyzer`` is given."""
    from inference.detectors import build_analyzer
    from inference.worker import InferenceWorker

    kafka = config.kafka
    ensure_topics(kafka, endpoints.bootstrap_servers)
    resolver = make_resolver(kafka)
    client = client_id("inference")
    tracker = DeliveryTracker(make_producer(kafka, endpoints.bootstrap_servers, client))
    worker = InferenceWorker(
        consumer=make_consumer(
            kafka, endpoints.bootstrap_servers, INFERENCE_GROUP, client
        ),
        tracker=tracker,
        dead_letters=DeadLetterPublisher(tracker, kafka, resolver, "inference"),
        frames_codec=AvroCodec(topic_name(kafka, FRAMES), "frame", resolver),
        events_codec=AvroCodec(
            topic_name(kafka, DETECTIONS), "detection_event", resolver
        ),
        analyzer=analyzer or build_analyzer(config.pipeline, config.cache_dir),
        cameras={camera.id: camera for camera in config.cameras},
        batch_max=config.pipeline.inference_batch_max,
        stop=stop,
        annotated_codec=AvroCodec(
            topic_name(kafka, ANNOTATED_FRAMES), "frame", resolver
        )
        if config.pipeline.publish_annotated
        else None,
        refresh_cameras=None if watcher is None else _camera_refresher(watcher),
    )
    return worker, tracker


def _camera_refresher(
    watcher: ConfigWatcher,
) -> Callable[[bool], dict[str, CameraConfig] | None]:
    def refresh(force: bool) -> dict[str, CameraConfig] | None:
        changed = watcher.poll(force=force)
        return None if changed is None else {c.id: c for c in changed.cameras}

    return refresh


def run_inference(
    config: PantauConfig,
    endpoints: Endpoints,
    *,
    metrics_port: int | None = None,
    watcher: ConfigWatcher | None = None,
) -> None:
    """Consume frames, detect people, publish detection events; with a
    ``watcher``, cameras added to the configuration are picked up live."""
    stop = threading.Event()
    install_stop_handlers(stop, "inference")
    serve_metrics(metrics_port)
    worker, tracker = build_inference_worker(config, endpoints, stop, watcher)
    worker.run()
    tracker.flush(60.0)


def run_windows(
    config: PantauConfig, bootstrap: str, *, metrics_port: int | None = None
) -> None:
    """Run the faust windows app as a worker until SIGINT/SIGTERM."""
    import faust

    from stream_apps.windows import create_app

    partitions = ensure_topics(config.kafka, bootstrap)
    detections = partitions[topic_name(config.kafka, DETECTIONS)]
    repartition_topic = topic_name(config.kafka, WINDOWS_REPARTITION)
    if partitions[repartition_topic] != detections:
        raise UsageError(
            f"topic {repartition_topic} must have as many partitions as the "
            f"detections topic: expected {detections}, got "
            f"{partitions[repartition_topic]}; add partitions to it with "
            "kafka-topics.sh --alter before starting the windows app"
        )
    # The group session follows the clients' own setting when one is given.
    session_ms = config.kafka.client_properties.get("session.timeout.ms", "10000")
    app = create_app(
        config,
        bootstrap,
        make_resolver(config.kafka),
        detections,
        session_timeout_s=float(str(session_ms)) / 1000,
    )
    ensure_changelog_topics(
        config.kafka,
        bootstrap,
        sorted(table.changelog_topic_name for table in app.tables.values()),
        detections,
    )
    serve_metrics(metrics_port)
    # faust warns on every changelog write that waits for its producer buffer to
    # drain: normal back-pressure under load, hundreds of lines a minute.
    logging.getLogger("faust.transport.producer").setLevel(logging.ERROR)
    # Keep Pantau's own log set-up: faust's would replace the root handler and
    # hide every pantau line below WARNING, the consumer-seek warnings included.
    worker = faust.Worker(
        app,
        loglevel="WARNING",
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
    )
    worker.spinner = None  # its terminal escape codes garble `pantau up` output
    log.info("windows worker starting app=%s", app.conf.id)
    worker.execute_from_commandline()


SinkTable = Literal["windows", "detections", "alerts", "camera_status"]
SINK_TABLES: tuple[SinkTable, ...] = (
    "windows",
    "detections",
    "alerts",
    "camera_status",
)


def sink_group(table: SinkTable) -> str:
    """The consumer group of the sink that fills ``table``."""
    return f"pantau-sink-{table.replace('_', '-')}"


def prepare_clickhouse(config: PantauConfig, endpoints: Endpoints) -> None:
    """Migrate the schema, set the retention and write the camera dimension."""
    ensure_tables(
        connect(config.clickhouse, endpoints.clickhouse_url),
        config.clickhouse.database,
        config.clickhouse.detections_ttl_days,
        config.cameras,
    )


def _sync_dimension(config: PantauConfig, endpoints: Endpoints) -> None:
    from stream_apps.camera_dimension import sync_cameras

    try:
        sync_cameras(
            connect(config.clickhouse, endpoints.clickhouse_url),
            config.clickhouse.database,
            config.cameras,
        )
    except (ClickHouseError, ClickHouseUnavailableError) as error:
        log.warning("camera dimension not updated; next change retries: %s", error)


def build_sink(
    config: PantauConfig,
    endpoints: Endpoints,
    stop: threading.Event,
    table: SinkTable = "windows",
) -> ClickHouseSink:
    """The sink that lands one topic in its ClickHouse table, not yet running;
    the schema must be in place (``prepare_clickhouse``)."""
    from stream_apps.clickhouse_tables import (
        alerts_arrow_table,
        camera_status_arrow_table,
        detections_arrow_table,
        windows_arrow_table,
    )
    from stream_apps.sink import ClickHouseSink

    builders: dict[SinkTable, tuple[TopicSpec, Callable[[list[Any]], pa.Table]]] = {
        "windows": (WINDOWS, windows_arrow_table),
        "detections": (DETECTIONS, detections_arrow_table),
        "alerts": (ALERTS, alerts_arrow_table),
        "camera_status": (CAMERA_STATUS, camera_status_arrow_table),
    }
    spec, to_arrow = builders[table]
    kafka = config.kafka
    resolver = make_resolver(kafka)
    client = client_id(f"sink-{table}")
    tracker = DeliveryTracker(make_producer(kafka, endpoints.bootstrap_servers, client))
    return ClickHouseSink(
        table=table,
        to_arrow=to_arrow,
        consumer=make_consumer(
            kafka, endpoints.bootstrap_servers, sink_group(table), client
        ),
        connect=lambda: connect(config.clickhouse, endpoints.clickhouse_url),
        database=config.clickhouse.database,
        codec=AvroCodec(topic_name(kafka, spec), spec.record_type, resolver),
        tracker=tracker,
        dead_letters=DeadLetterPublisher(tracker, kafka, resolver, "sink"),
        batch_rows=config.pipeline.sink_batch_rows,
        batch_interval_s=config.pipeline.sink_batch_interval_s,
        stop=stop,
    )


def run_sink(
    config: PantauConfig,
    endpoints: Endpoints,
    *,
    metrics_port: int | None = None,
    watcher: ConfigWatcher | None = None,
) -> None:
    """Land window aggregates, detection events, alerts and camera status in
    ClickHouse, one sink thread each, until SIGINT/SIGTERM; a sink that fails
    stops the others. With a ``watcher`` the camera dimension follows the
    configuration file."""
    stop = threading.Event()
    install_stop_handlers(stop, "sink")
    serve_metrics(metrics_port)
    ensure_topics(config.kafka, endpoints.bootstrap_servers)
    prepare_clickhouse(config, endpoints)
    sinks = [build_sink(config, endpoints, stop, table) for table in SINK_TABLES]
    failures: list[BaseException] = []

    def run(sink: ClickHouseSink) -> None:
        try:
            sink.run()
        except BaseException as error:
            failures.append(error)
            stop.set()
            raise

    threads = [
        threading.Thread(target=run, args=(sink,), name=f"sink-{table}")
        for table, sink in zip(SINK_TABLES, sinks, strict=True)
    ]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        stop.wait(1.0)
        changed = watcher.poll() if watcher is not None else None
        if changed is not None:
            _sync_dimension(changed, endpoints)
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
