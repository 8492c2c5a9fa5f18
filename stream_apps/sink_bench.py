"""``pantau bench sink``: detection events from Kafka into ClickHouse through
the detections sink, against bare Arrow inserts of the same rows into the same
engine, in the same run.

Three figures, each into a fresh table:

- bare, one insert: the rows as one Arrow table, built beforehand, in one
  insert (the engine's ceiling);
- bare, batched: the same Arrow rows in inserts of ``pipeline.sink_batch_rows``
  (what batching alone costs);
- sink: the real sink (consume, Avro decode, Arrow build, insert, commit),
  timed from its first inserted batch to its last, so that the consumer
  group's join is left out.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

from infra.embedded import Endpoints
from infra.topics_admin import ensure_topics
from pantau.clickhouse import connect
from pantau.config import PantauConfig
from pantau.kafka import make_resolver, topic_name
from schemas.codec import AvroCodec
from schemas.records import Detection, DetectionEvent
from schemas.topics import DETECTIONS
from stream_apps.bench import Rate, publish, synthetic_events
from stream_apps.clickhouse_migrations import migrate
from stream_apps.clickhouse_tables import DETECTIONS_TABLE, detections_arrow_table

log = logging.getLogger("pantau.bench")

BOXES_PER_EVENT = 4


@dataclass(frozen=True)
class SinkFigures:
    """What one run measured."""

    rows: int
    bare_single: Rate
    bare_batched: Rate
    sink: Rate

    def report(self, engine: str, batch_rows: int) -> str:
        sink_s = self.sink.per_s
        return "\n".join(
            [
                f"sink benchmark: {self.rows} detection events with "
                f"{BOXES_PER_EVENT} boxes each into {engine}",
                f"  bare Arrow insert, one insert        "
                f"{self.bare_single.per_s:10.0f} rows/s",
                f"  bare Arrow insert, {batch_rows:>6}-row batches "
                f"{self.bare_batched.per_s:10.0f} rows/s",
                f"  detections sink, topic to table      {sink_s:10.0f} rows/s",
                f"  ratio sink / bare one insert          "
                f"{sink_s / self.bare_single.per_s:10.3f}",
                f"  ratio sink / bare batched             "
                f"{sink_s / self.bare_batched.per_s:10.3f}",
            ]
        )


def boxed_events(count: int, cameras: int) -> list[DetectionEvent]:
    """The windows benchmark's events, each with a few people boxes."""
    events = synthetic_events(count, cameras)
    for index, event in enumerate(events):
        boxes: list[Detection] = []
        for box in range(BOXES_PER_EVENT):
            left = 0.1 + 0.2 * box
            boxes.append(
                {
                    "class_name": "person",
                    "score": 0.5 + (index + box) % 5 / 10,
                    "x_min": left,
                    "y_min": 0.3,
                    "x_max": left + 0.1,
                    "y_max": 0.8,
                    "mask_state": ("MASKED", "UNMASKED", "UNKNOWN")[box % 3],
                    "violation": box % 2 == 0,
                }
            )
        event["detections"] = boxes
    return events


def _fresh_table(client: Client, database: str) -> None:
    client.command(f"DROP DATABASE IF EXISTS {database}")
    migrate(client, database)


def bare_inserts(
    client: Client, database: str, events: list[DetectionEvent], batch_rows: int
) -> tuple[Rate, Rate]:
    """Insert the prepared Arrow rows at once, then in batches."""
    whole = detections_arrow_table(events)
    # A first insert into a new table pays for start-up work: keep it out.
    _fresh_table(client, database)
    client.insert_arrow(DETECTIONS_TABLE, whole.slice(0, batch_rows), database=database)
    _fresh_table(client, database)
    started = time.perf_counter()
    client.insert_arrow(DETECTIONS_TABLE, whole, database=database)
    single = Rate(len(events), time.perf_counter() - started)
    batches = [
        whole.slice(offset, batch_rows) for offset in range(0, len(events), batch_rows)
    ]
    _fresh_table(client, database)
    started = time.perf_counter()
    for batch in batches:
        client.insert_arrow(DETECTIONS_TABLE, batch, database=database)
    batched = Rate(len(events), time.perf_counter() - started)
    return single, batched


def sink_rate(config: PantauConfig, endpoints: Endpoints, rows: int) -> Rate:
    """Run the detections sink until it has inserted ``rows`` rows."""
    from pantau.services import build_sink, prepare_clickhouse

    prepare_clickhouse(config, endpoints)
    stop = threading.Event()
    sink = build_sink(config, endpoints, stop, "detections")
    thread = threading.Thread(target=sink.run, name="bench-sink")
    thread.start()
    next_report = time.monotonic() + 2
    first_at: float | None = None
    first_rows = 0
    try:
        deadline = time.monotonic() + 600
        while sink.rows_inserted < rows:
            if not thread.is_alive():
                raise RuntimeError("the sink stopped before inserting every row")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the sink inserted {sink.rows_inserted} of {rows} rows in 600 s"
                )
            if first_at is None and sink.rows_inserted:
                first_at, first_rows = time.perf_counter(), sink.rows_inserted
            if time.monotonic() >= next_report:
                log.info("sink benchmark rows=%s of=%s", sink.rows_inserted, rows)
                next_report += 2
            time.sleep(0.005)
        done_at = time.perf_counter()
    finally:
        stop.set()
        thread.join(60)
    if first_at is None or first_rows >= rows:
        raise RuntimeError(
            f"the sink inserted all {rows} rows in one batch; give --rows more "
            f"than pipeline.sink_batch_rows ({config.pipeline.sink_batch_rows})"
        )
    return Rate(rows - first_rows, done_at - first_at)


def bench_sink(
    config: PantauConfig,
    bootstrap: str,
    clickhouse_url: str,
    *,
    rows: int,
    cameras: int,
) -> str:
    """Run the three measurements and return the report."""
    run_id = uuid.uuid4().hex[:8]
    kafka = config.kafka.model_copy(update={"topic_prefix": f"bench-{run_id}."})
    database = f"bench_sink_{run_id}"
    clickhouse = config.clickhouse.model_copy(
        update={
            "url": clickhouse_url,
            "database": database,
            "detections_ttl_days": None,
        }
    )
    config = config.model_copy(update={"kafka": kafka, "clickhouse": clickhouse})
    ensure_topics(kafka, bootstrap)
    topic = topic_name(kafka, DETECTIONS)
    events = boxed_events(rows, cameras)
    log.info("publishing benchmark events rows=%s topic=%s", rows, topic)
    publish(
        bootstrap,
        topic,
        AvroCodec(topic, "detection_event", make_resolver(kafka)),
        events,
    )
    client = connect(clickhouse, clickhouse_url)
    batch_rows = config.pipeline.sink_batch_rows
    single, batched = bare_inserts(client, f"{database}_bare", events, batch_rows)
    client.command(f"DROP DATABASE IF EXISTS {database}_bare")
    sink = sink_rate(config, Endpoints(bootstrap, clickhouse_url), rows)
    landed = client.query(
        f"SELECT count() FROM {database}.{DETECTIONS_TABLE} FINAL"
    ).result_rows[0][0]
    if landed != rows:
        raise RuntimeError(f"expected {rows} rows in ClickHouse, got {landed}")
    client.command(f"DROP DATABASE IF EXISTS {database}")
    engine = "in-process chDB" if clickhouse_url.startswith("chdb:") else clickhouse_url
    return SinkFigures(rows, single, batched, sink).report(engine, batch_rows)
