"""How far the pipeline has got: topic end offsets, consumer-group lag and the
rows that reached ClickHouse."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from confluent_kafka import Consumer, KafkaException, TopicPartition

from pantau.config import PantauConfig
from pantau.kafka import consumer_config, topic_name
from schemas.topics import DETECTIONS, FRAMES, WINDOWS, TopicSpec
from stream_apps.clickhouse_tables import WINDOWS_TABLE

log = logging.getLogger("pantau.progress")


@dataclass(frozen=True)
class Snapshot:
    """Messages on each topic, lag of the group reading it, ClickHouse totals."""

    frames: int
    detections: int
    windows: int
    lag: dict[str, int]
    window_rows: int
    frames_in_windows: int

    def line(self) -> str:
        """One progress line for the terminal."""
        lag = " ".join(f"{name}={value}" for name, value in self.lag.items())
        return (
            f"frames={self.frames} detections={self.detections} "
            f"window_updates={self.windows} clickhouse_windows={self.window_rows} "
            f"frames_counted={self.frames_in_windows} lag[{lag}]"
        )

    @property
    def drained(self) -> bool:
        """True when every group has consumed everything on its topic."""
        return all(value == 0 for value in self.lag.values())


class ProgressProbe:
    """Reads the pipeline's position; one Kafka consumer per group, never joined."""

    def __init__(
        self,
        config: PantauConfig,
        bootstrap: str,
        clickhouse: Client,
        groups: dict[str, TopicSpec],
    ) -> None:
        self._config = config
        self._clickhouse = clickhouse
        self._groups = {
            group: (
                topic_name(config.kafka, topic),
                Consumer(
                    consumer_config(config.kafka, bootstrap, group, f"{group}-probe")
                ),
            )
            for group, topic in groups.items()
        }

    def close(self) -> None:
        """Close the probe's consumers."""
        for _, consumer in self._groups.values():
            consumer.close()

    def _end_offsets(self, consumer: Consumer, topic: str) -> list[TopicPartition]:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        ends = []
        for partition in partitions:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            ends.append(TopicPartition(topic, partition, high))
        return ends

    def snapshot(self) -> Snapshot:
        """The current position of every stage. While the broker cannot answer
        (a leader moving, a restart) the lag is reported as unknown (-1)."""
        try:
            return self._read()
        except KafkaException as error:
            log.warning("cannot read topic positions yet: %s", error.args[0].str())
            return Snapshot(0, 0, 0, {"unknown": -1}, -1, -1)

    def _read(self) -> Snapshot:
        totals: dict[str, int] = {}
        lag: dict[str, int] = {}
        for group, (topic, consumer) in self._groups.items():
            ends = self._end_offsets(consumer, topic)
            totals[topic] = sum(end.offset for end in ends)
            committed = consumer.committed(
                [TopicPartition(e.topic, e.partition) for e in ends], timeout=10
            )
            lag[group] = sum(
                end.offset - max(0, done.offset)
                for end, done in zip(ends, committed, strict=True)
            )
        database = self._config.clickhouse.database
        try:
            rows, frames = self._clickhouse.query(
                f"SELECT count(), sum(frames) FROM {database}.{WINDOWS_TABLE} FINAL"
            ).result_rows[0]
        except ClickHouseError as error:
            log.warning("cannot read window totals from ClickHouse: %s", error)
            rows, frames = -1, -1
        kafka = self._config.kafka
        return Snapshot(
            frames=totals.get(topic_name(kafka, FRAMES), 0),
            detections=totals.get(topic_name(kafka, DETECTIONS), 0),
            windows=totals.get(topic_name(kafka, WINDOWS), 0),
            lag=lag,
            window_rows=int(rows),
            frames_in_windows=int(frames or 0),
        )
