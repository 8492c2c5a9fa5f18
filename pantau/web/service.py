"""Build and run the monitoring page."""

from __future__ import annotations

import asyncio
import logging
import threading

from infra.embedded import Endpoints
from infra.topics_admin import ensure_topics
from infra.web_assets import fetch_chartjs
from pantau.clickhouse import connect
from pantau.config import PantauConfig
from pantau.kafka import make_consumer, make_resolver, topic_name
from pantau.runtime import install_stop_handlers
from pantau.services import client_id
from pantau.web.frames import LatestFrames
from pantau.web.server import PageServer, serve
from schemas.codec import AvroCodec
from schemas.topics import ANNOTATED_FRAMES

log = logging.getLogger("pantau.web")


def run_web(
    config: PantauConfig,
    endpoints: Endpoints,
    *,
    port: int | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Serve the page until SIGINT/SIGTERM (or ``stop``)."""
    if stop is None:
        stop = threading.Event()
        install_stop_handlers(stop, "web")
    chartjs = fetch_chartjs(config.cache_dir)
    kafka = config.kafka
    ensure_topics(kafka, endpoints.bootstrap_servers)
    if not config.pipeline.publish_annotated:
        log.warning(
            "pipeline.publish_annotated is off: the camera wall will show no "
            "pictures; turn it on to see annotated frames"
        )
    topic = topic_name(kafka, ANNOTATED_FRAMES)
    frames = LatestFrames(
        make_consumer(
            kafka, endpoints.bootstrap_servers, "pantau-web", client_id("web")
        ),
        AvroCodec(topic, ANNOTATED_FRAMES.record_type, make_resolver(kafka)),
        stop,
    )
    frames.start()
    server = PageServer(
        connect=lambda: connect(config.clickhouse, endpoints.clickhouse_url),
        database=config.clickhouse.database,
        frames=frames,
        chartjs=chartjs,
        refresh_s=config.web.refresh_s,
    )
    try:
        asyncio.run(serve(server, config.web.host, port or config.web.port, stop))
    finally:
        stop.set()
        frames.join(10)
