"""Avro encoding and decoding of one record type on one topic, in the Confluent
wire format."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import fastavro
from fastavro.read import SchemaResolutionError

from schemas import catalogue, wire
from schemas.registry import SchemaResolver


class MessageDecodeError(ValueError):
    """A message that cannot be read as the expected record type."""


class MessageEncodeError(ValueError):
    """A record that does not match its Avro schema."""


class AvroCodec:
    """Writes the latest schema version of a record type; reads every version the
    resolver knows, resolved into the latest."""

    def __init__(self, topic: str, record_type: str, resolver: SchemaResolver) -> None:
        self.topic = topic
        self.record_type = record_type
        self._resolver = resolver
        self._reader_schema = catalogue.latest(record_type).parsed()
        self._reader_name = self._reader_schema["name"]
        self._writer_id: int | None = None

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """Serialise one record with the wire-format header."""
        if self._writer_id is None:
            self._writer_id = self._resolver.writer_id(self.topic, self.record_type)
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, self._reader_schema, dict(record))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise MessageEncodeError(
                f"{self.record_type} record does not match its schema: {error}"
            ) from error
        return wire.pack(self._writer_id, buffer.getvalue())

    def decode(self, message: bytes | None) -> dict[str, Any]:
        """Read one wire-format message into a dict shaped like the latest schema."""
        if message is None:
            raise MessageDecodeError(
                f"expected a {self.record_type} message on {self.topic}, got a "
                "tombstone (null value)"
            )
        try:
            schema_id, body = wire.unpack(message)
            writer_schema = self._resolver.schema_for_id(schema_id)
        except (wire.WireFormatError, catalogue.UnknownSchemaError) as error:
            raise MessageDecodeError(str(error)) from error
        if writer_schema["name"] != self._reader_name:
            raise MessageDecodeError(
                f"expected a {self._reader_name} on {self.topic}, got a "
                f"{writer_schema['name']} (schema id {schema_id})"
            )
        reader = None if writer_schema is self._reader_schema else self._reader_schema
        try:
            record = fastavro.schemaless_reader(io.BytesIO(body), writer_schema, reader)
        except (EOFError, ValueError, IndexError, SchemaResolutionError) as error:
            raise MessageDecodeError(
                f"{self.record_type} body does not match schema id {schema_id}: "
                f"{type(error).__name__}: {error}"
            ) from error
        if not isinstance(record, dict):
            raise MessageDecodeError(
                f"expected a {self.record_type} record, got {type(record).__name__}"
            )
        return record
