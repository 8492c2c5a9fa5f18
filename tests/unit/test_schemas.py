"""The Avro contracts: wire format, local ids, codec errors and compatibility."""

from __future__ import annotations

import itertools
import json
import typing
from pathlib import Path

import fastavro
import pytest

from schemas import catalogue, wire
from schemas.codec import AvroCodec, MessageDecodeError, MessageEncodeError
from schemas.compat import backward_problems
from schemas.records import RECORD_SHAPES, Frame
from schemas.registry import LocalResolver
from schemas.topics import ALL_TOPICS, FRAMES

FRAME: Frame = {
    "camera_id": "jkt-001",
    "frame_seq": 7,
    "captured_at_ms": 1_767_225_600_000,
    "published_at_ms": 1_767_225_600_050,
    "width_px": 768,
    "height_px": 576,
    "content_type": "image/jpeg",
    "image": b"\xff\xd8\xff",
}


def test_frame_round_trips_with_wire_header() -> None:
    codec = AvroCodec(FRAMES.name, "frame", LocalResolver())
    message = codec.encode(FRAME)
    assert message[0] == 0
    assert int.from_bytes(message[1:5], "big") == catalogue.local_schema_id("frame", 1)
    assert codec.decode(message) == FRAME


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        (b"\x00\x00", "too short"),
        (b"\x01\x00\x00\x03\xe9abc", "bad magic byte"),
        (b"\x00\x00\x00\x00\x05abc", "not in the local catalogue"),
        (b"\x00\x00\x00\x03\xe9\x02", "does not match schema id 1001"),
        (None, "tombstone"),
    ],
)
def test_bad_messages_say_what_is_wrong(message: bytes | None, needle: str) -> None:
    codec = AvroCodec(FRAMES.name, "frame", LocalResolver())
    with pytest.raises(MessageDecodeError, match=needle):
        codec.decode(message)


def test_message_of_another_type_is_refused() -> None:
    frame_codec = AvroCodec(FRAMES.name, "frame", LocalResolver())
    status_codec = AvroCodec("pantau.camera-status", "camera_status", LocalResolver())
    status = status_codec.encode(
        {
            "camera_id": "a",
            "state": "ONLINE",
            "changed_at_ms": 1,
            "reason": None,
            "last_frame_at_ms": None,
        }
    )
    with pytest.raises(MessageDecodeError, match=r"expected a id\.pantau\.v1\.Frame"):
        frame_codec.decode(status)


def test_encode_names_the_bad_field() -> None:
    codec = AvroCodec(FRAMES.name, "frame", LocalResolver())
    with pytest.raises(MessageEncodeError, match="frame record"):
        codec.encode({**FRAME, "frame_seq": "seven"})


def test_local_ids_are_stable() -> None:
    # These ids are part of the public contract (docs/topics.md): never change them.
    assert catalogue.local_schema_id("frame", 1) == 1001
    assert catalogue.local_schema_id("detection_event", 1) == 1101
    assert catalogue.local_schema_id("window_aggregate", 1) == 1201
    assert catalogue.local_schema_id("camera_status", 1) == 1301
    assert catalogue.local_schema_id("alert", 1) == 1401
    assert catalogue.local_schema_id("dead_letter", 1) == 1501
    assert catalogue.local_schema_id("mobility", 1) == 1601
    assert catalogue.local_schema_id("compliance", 1) == 1701
    assert catalogue.by_local_id(1101).record_type == "detection_event"


def test_wire_pack_unpack() -> None:
    schema_id, body = wire.unpack(wire.pack(4242, b"body"))
    assert schema_id == 4242
    assert bytes(body) == b"body"


@pytest.mark.parametrize("record_type", catalogue.RECORD_TYPES)
def test_every_schema_change_is_backward_compatible(record_type: str) -> None:
    versions = catalogue.versions(record_type)
    for old, new in itertools.pairwise(versions):
        assert backward_problems(old.parsed(), new.parsed()) == [], (
            f"{record_type} v{new.version} cannot read v{old.version} data"
        )
    latest = versions[-1]
    assert backward_problems(latest.parsed(), latest.parsed()) == []


def test_compat_check_catches_a_breaking_change() -> None:
    old = catalogue.latest("camera_status").raw()
    new = json.loads(json.dumps(old))
    new["fields"].append({"name": "site", "type": "string"})  # no default
    assert backward_problems(fastavro.parse_schema(old), fastavro.parse_schema(new))


def test_compat_check_catches_a_removed_enum_symbol() -> None:
    old = catalogue.latest("camera_status").raw()
    new = json.loads(json.dumps(old))
    new["fields"][1]["type"]["symbols"].remove("FROZEN")
    assert backward_problems(fastavro.parse_schema(old), fastavro.parse_schema(new))


@pytest.mark.parametrize("record_type", catalogue.RECORD_TYPES)
def test_typed_shapes_match_the_schemas(record_type: str) -> None:
    raw = catalogue.latest(record_type).raw()
    schema_fields = [field["name"] for field in raw["fields"]]
    shape_fields = list(typing.get_type_hints(RECORD_SHAPES[record_type]))
    assert shape_fields == schema_fields


def test_every_topic_has_a_schema_and_docs() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "topics.md").read_text()
    for topic in ALL_TOPICS:
        if topic.encoding == "avro":
            assert catalogue.latest(topic.record_type)
        assert f"`{topic.name}`" in docs, (
            f"docs/topics.md does not describe {topic.name}"
        )
