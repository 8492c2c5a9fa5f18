"""Where schema ids come from: the local catalogue, or a Confluent Schema Registry."""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

import fastavro
import httpx2
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from schemas import catalogue


class SchemaResolver(Protocol):
    """Maps record types to the id producers write and ids back to schemas."""

    def writer_id(self, topic: str, record_type: str) -> int:
        """The schema id to put in messages of this type on this topic."""
        ...

    def schema_for_id(self, schema_id: int) -> Any:
        """The parsed writer schema behind an id found in a message."""
        ...


class LocalResolver:
    """Ids from the documented local catalogue; needs no registry."""

    def writer_id(self, topic: str, record_type: str) -> int:
        return catalogue.latest(record_type).local_id

    def schema_for_id(self, schema_id: int) -> Any:
        return catalogue.by_local_id(schema_id).parsed()


class RegistryUnavailableError(RuntimeError):
    """The Schema Registry could not register or return a schema."""


class RegistryResolver:
    """Registers schemas under ``<topic>-value`` subjects and resolves ids through
    a Confluent-compatible Schema Registry."""

    def __init__(self, url: str, basic_auth_user_info: str | None = None) -> None:
        conf = {"url": url}
        if basic_auth_user_info:
            conf["basic.auth.user.info"] = basic_auth_user_info
        self._url = url
        self._client = SchemaRegistryClient(conf)
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, Any] = {}
        self._lock = threading.Lock()

    def writer_id(self, topic: str, record_type: str) -> int:
        key = (topic, record_type)
        with self._lock:
            if key not in self._ids:
                text = catalogue.latest(record_type).canonical_text()
                try:
                    schema_id: int = self._client.register_schema(
                        f"{topic}-value", Schema(text, "AVRO")
                    )
                except (SchemaRegistryError, httpx2.TransportError) as error:
                    raise RegistryUnavailableError(
                        f"schema registry at {self._url} refused {record_type} for "
                        f"subject {topic}-value: {error}"
                    ) from error
                self._ids[key] = schema_id
            return self._ids[key]

    def schema_for_id(self, schema_id: int) -> Any:
        with self._lock:
            if schema_id not in self._schemas:
                try:
                    schema = self._client.get_schema(schema_id)
                except SchemaRegistryError as error:
                    if error.http_status_code == 404:
                        # A message naming an id nobody registered is poison.
                        raise catalogue.UnknownSchemaError(
                            f"schema registry at {self._url} has no schema id "
                            f"{schema_id}"
                        ) from error
                    raise RegistryUnavailableError(
                        f"schema registry at {self._url} failed to return schema "
                        f"id {schema_id}: {error}"
                    ) from error
                except httpx2.TransportError as error:
                    raise RegistryUnavailableError(
                        f"schema registry at {self._url} is unreachable: {error}"
                    ) from error
                if not schema.schema_str:
                    raise RegistryUnavailableError(
                        f"schema registry at {self._url} returned an empty schema "
                        f"for id {schema_id}"
                    )
                self._schemas[schema_id] = fastavro.parse_schema(
                    json.loads(schema.schema_str)
                )
            return self._schemas[schema_id]
