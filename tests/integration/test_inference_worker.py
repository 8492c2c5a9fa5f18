"""The inference consumer against the real broker: real frames in, events and
dead letters out, offsets committed only for finished work."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.embedded import Endpoints
from infra.kafka_broker import EmbeddedKafka
from pantau.config import PantauConfig
from pantau.kafka import topic_name
from pantau.services import INFERENCE_GROUP, build_inference_worker
from producers.publisher import fit_jpeg
from schemas.codec import AvroCodec
from schemas.records import Frame
from schemas.registry import LocalResolver
from schemas.topics import ANNOTATED_FRAMES, DEAD_LETTER, DETECTIONS, FRAMES
from tests.conftest import VTEST, make_config
from tests.kafka_io import Keyed, read_until

pytestmark = pytest.mark.integration


def read_all(
    bootstrap: str, topic: str, record_type: str, expected: int
) -> list[Keyed]:
    """The first ``expected`` messages of a topic, waiting for them to arrive."""
    return read_until(bootstrap, topic, record_type, lambda got: len(got) >= expected)


def frame_message(camera_id: str, seq: int, image: bytes) -> bytes:
    frame: Frame = {
        "camera_id": camera_id,
        "frame_seq": seq,
        "captured_at_ms": 1_767_225_600_000 + seq,
        "published_at_ms": 1_767_225_600_000 + seq,
        "width_px": 768,
        "height_px": 576,
        "content_type": "image/jpeg",
        "image": image,
    }
    return AvroCodec("frames", "frame", LocalResolver()).encode(frame)


def test_frames_become_events_and_poison_goes_to_dead_letter(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config: PantauConfig = make_config(bootstrap, topic_prefix, tmp_path)
    config = config.model_copy(
        update={
            "pipeline": config.pipeline.model_copy(update={"publish_annotated": True})
        }
    )
    endpoints = Endpoints(bootstrap, "http://127.0.0.1:1")
    stop = threading.Event()
    worker, tracker = build_inference_worker(config, endpoints, stop)

    capture = cv2.VideoCapture(str(VTEST))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 600)
    ok, image = capture.read()
    capture.release()
    assert ok
    jpeg, _ = fit_jpeg(np.asarray(image, np.uint8), 1280, 85, 1_000_000)
    frames_topic = topic_name(config.kafka, FRAMES)
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(frames_topic, key=b"cam-1", value=frame_message("cam-1", 1, jpeg))
    producer.produce(
        frames_topic, key=b"cam-1", value=frame_message("cam-1", 2, b"\xff\xd8junk")
    )
    producer.produce(frames_topic, key=b"cam-1", value=b"not avro at all")
    producer.produce(frames_topic, key=b"cam-9", value=frame_message("cam-9", 3, jpeg))
    assert producer.flush(10) == 0

    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        events = read_all(
            bootstrap, topic_name(config.kafka, DETECTIONS), "detection_event", 1
        )
        annotated = read_all(
            bootstrap, topic_name(config.kafka, ANNOTATED_FRAMES), "frame", 1
        )
        dead = read_all(
            bootstrap, topic_name(config.kafka, DEAD_LETTER), "dead_letter", 3
        )
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()

    assert len(events) == 1
    key, event = events[0]
    assert key == b"cam-1"
    assert event["camera_id"] == "cam-1"
    assert event["region"]["kecamatan"] == "Gambir"
    assert event["counts"]["people"] >= 2
    people = [d for d in event["detections"] if d["class_name"] == "person"]
    assert len(people) == event["counts"]["people"]

    assert len(annotated) == 1
    picture = cv2.imdecode(np.frombuffer(annotated[0][1]["image"], np.uint8), 1)
    assert picture is not None
    assert picture.shape == (576, 768, 3)
    assert annotated[0][1]["frame_seq"] == event["frame_seq"]

    reasons = {record["error_type"]: record for _, record in dead}
    assert set(reasons) == {"undecodable-image", "bad-schema", "unknown-camera"}
    assert "cam-9" in reasons["unknown-camera"]["reason"]
    assert reasons["bad-schema"]["original_value"] == b"not avro at all"
    assert reasons["undecodable-image"]["source_topic"] == frames_topic

    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": INFERENCE_GROUP})
    try:
        partitions = (
            probe.list_topics(frames_topic, timeout=10).topics[frames_topic].partitions
        )
        tps = [TopicPartition(frames_topic, p) for p in partitions]
        committed = probe.committed(tps, timeout=10)
        ends = [probe.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    finally:
        probe.close()
    assert [max(0, tp.offset) for tp in committed] == ends
    assert tracker.delivered == 5  # event, annotated frame, three dead letters


def test_two_workers_in_one_group_publish_each_frame_once(
    kafka_broker: EmbeddedKafka, topic_prefix: str, tmp_path: Path
) -> None:
    bootstrap = kafka_broker.bootstrap_servers
    config = make_config(bootstrap, topic_prefix, tmp_path)
    second = config.cameras[0].model_copy(update={"id": "cam-2"})
    config = config.model_copy(
        update={
            "cameras": [config.cameras[0], second],
            "pipeline": config.pipeline.model_copy(
                update={
                    "detector": config.pipeline.detector.model_copy(
                        update={"kind": "hog"}
                    ),
                    "faces": config.pipeline.faces.model_copy(
                        update={"enabled": False}
                    ),
                }
            ),
        }
    )
    endpoints = Endpoints(bootstrap, "http://127.0.0.1:1")
    stop = threading.Event()
    workers = [build_inference_worker(config, endpoints, stop)[0] for _ in range(2)]
    threads = [threading.Thread(target=worker.run) for worker in workers]
    for thread in threads:
        thread.start()

    capture = cv2.VideoCapture(str(VTEST))
    ok, image = capture.read()
    capture.release()
    assert ok
    jpeg, _ = fit_jpeg(np.asarray(image, np.uint8), 640, 80, 1_000_000)
    producer = Producer({"bootstrap.servers": bootstrap})
    frames_topic = topic_name(config.kafka, FRAMES)
    for seq in range(12):
        camera = "cam-1" if seq % 2 else "cam-2"
        producer.produce(
            frames_topic, key=camera.encode(), value=frame_message(camera, seq, jpeg)
        )
    assert producer.flush(10) == 0
    try:
        events = read_all(
            bootstrap, topic_name(config.kafka, DETECTIONS), "detection_event", 12
        )
        # Give a wrongly duplicated event a few seconds to show up.
        events = read_until(
            bootstrap,
            topic_name(config.kafka, DETECTIONS),
            "detection_event",
            lambda got: len(got) > 12,
            timeout_s=4.0,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    ids = [event["event_id"] for _, event in events]
    assert len(ids) == 12
    assert len(set(ids)) == 12
    assert sum(worker.events_published for worker in workers) == 12
