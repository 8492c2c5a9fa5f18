"""The Schema Registry path through confluent-kafka's real registry client.

No Schema Registry server installs from the package registries this project may
use, so a small HTTP double on loopback speaks the two REST calls the client makes
(register a schema under a subject, fetch a schema by id).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from pantau.config import KafkaConfig
from pantau.kafka import make_resolver
from schemas.codec import AvroCodec, MessageDecodeError
from schemas.registry import LocalResolver, RegistryResolver, RegistryUnavailableError


class RegistryDouble(BaseHTTPRequestHandler):
    schemas: ClassVar[dict[int, str]] = {}
    subjects: ClassVar[dict[str, int]] = {}
    auth_headers: ClassVar[list[str | None]] = []

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        self.auth_headers.append(self.headers.get("Authorization"))
        length = int(self.headers["Content-Length"])
        payload = json.loads(self.rfile.read(length))
        subject = self.path.split("/")[2]
        schema_id = self.subjects.setdefault(subject, 7000 + len(self.subjects))
        self.schemas[schema_id] = payload["schema"]
        self._reply(200, {"id": schema_id})

    def do_GET(self) -> None:
        schema_id = int(self.path.split("/")[3].split("?")[0])
        if schema_id not in self.schemas:
            self._reply(404, {"error_code": 40403, "message": "Schema not found"})
            return
        self._reply(200, {"schema": self.schemas[schema_id]})


@pytest.fixture
def registry_url() -> Iterator[str]:
    RegistryDouble.schemas, RegistryDouble.subjects = {}, {}
    RegistryDouble.auth_headers = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RegistryDouble)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


STATUS = {
    "camera_id": "jkt-001",
    "state": "OFFLINE",
    "changed_at_ms": 1,
    "reason": "connection refused",
    "last_frame_at_ms": None,
}


def test_ids_are_registered_per_topic_subject(registry_url: str) -> None:
    resolver = make_resolver(
        KafkaConfig(
            schema_registry_url=registry_url,
            schema_registry_basic_auth="pantau:s3cret",  # type: ignore[arg-type]
        )
    )
    assert isinstance(resolver, RegistryResolver)
    codec = AvroCodec("jakarta.pantau.camera-status", "camera_status", resolver)
    message = codec.encode(STATUS)
    assert int.from_bytes(message[1:5], "big") == 7000
    assert RegistryDouble.subjects == {"jakarta.pantau.camera-status-value": 7000}
    assert RegistryDouble.auth_headers[0] is not None
    assert codec.decode(message) == STATUS


def test_local_ids_are_unknown_to_a_registry_reader(registry_url: str) -> None:
    local = AvroCodec("pantau.camera-status", "camera_status", LocalResolver())
    remote = AvroCodec(
        "pantau.camera-status", "camera_status", RegistryResolver(registry_url)
    )
    with pytest.raises(MessageDecodeError, match="no schema id 1301"):
        remote.decode(local.encode(STATUS))


def test_unreachable_registry_names_the_url() -> None:
    codec = AvroCodec(
        "pantau.camera-status", "camera_status", RegistryResolver("http://127.0.0.1:9")
    )
    with pytest.raises(RegistryUnavailableError, match=r"127\.0\.0\.1:9"):
        codec.encode(STATUS)
