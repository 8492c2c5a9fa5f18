"""Which Avro schemas exist, their versions, and their ids when no registry is used.

Every record type has one or more versions in ``schemas/avro/<name>.v<N>.avsc``.
Without a Schema Registry, the 4-byte schema id in each message comes from this
local catalogue: ``id = 1000 + 100 * type_index + version``. Ids are never reused
or changed, so messages written today stay readable after the next upgrade.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro

AVRO_DIR = Path(__file__).parent / "avro"

# Order matters: the index is part of the local schema id. Append, never reorder.
RECORD_TYPES: tuple[str, ...] = (
    "frame",
    "detection_event",
    "window_aggregate",
    "camera_status",
    "alert",
    "dead_letter",
    "mobility",
    "compliance",
)


class UnknownSchemaError(LookupError):
    """A schema id or record type that this catalogue does not know."""


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one record type, as written in its ``.avsc`` file."""

    record_type: str
    version: int
    local_id: int
    path: Path

    def raw(self) -> dict[str, Any]:
        """The schema as JSON, exactly as in the file."""
        loaded: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return loaded

    def parsed(self) -> Any:
        """The schema parsed by fastavro, ready for reading and writing."""
        return _parse(self.path)

    def canonical_text(self) -> str:
        """The schema text a registry receives."""
        return json.dumps(self.raw(), separators=(",", ":"), sort_keys=True)


@cache
def _parse(path: Path) -> Any:
    return fastavro.parse_schema(json.loads(path.read_text(encoding="utf-8")))


def local_schema_id(record_type: str, version: int) -> int:
    """The id a message of this type and version carries without a registry."""
    if record_type not in RECORD_TYPES:
        raise UnknownSchemaError(
            f"unknown record type: expected one of {', '.join(RECORD_TYPES)}, "
            f"got {record_type!r}"
        )
    if not 1 <= version <= 99:
        raise UnknownSchemaError(
            f"schema version must be in 1..99, got {version} for {record_type}"
        )
    return 1000 + 100 * RECORD_TYPES.index(record_type) + version


def versions(record_type: str) -> list[SchemaVersion]:
    """Every version of a record type, oldest first."""
    return list(_versions(record_type))


@cache
def _versions(record_type: str) -> tuple[SchemaVersion, ...]:
    # Cached: decoding looks the schema up for every message, and the files
    # ship with the package, so they do not change while it runs.
    local_schema_id(record_type, 1)
    found = []
    for path in AVRO_DIR.glob(f"{record_type}.v*.avsc"):
        stem = path.name.removeprefix(f"{record_type}.v").removesuffix(".avsc")
        version = int(stem)
        schema_id = local_schema_id(record_type, version)
        found.append(SchemaVersion(record_type, version, schema_id, path))
    if not found:
        raise UnknownSchemaError(f"no .avsc file for {record_type} in {AVRO_DIR}")
    return tuple(sorted(found, key=lambda v: v.version))


def latest(record_type: str) -> SchemaVersion:
    """The version that producers write and readers resolve into."""
    return versions(record_type)[-1]


def by_local_id(schema_id: int) -> SchemaVersion:
    """The schema version behind a local id."""
    index, version = divmod(schema_id - 1000, 100)
    if schema_id < 1000 or index >= len(RECORD_TYPES):
        raise UnknownSchemaError(
            f"schema id {schema_id} is not in the local catalogue (ids 1001.."
            f"{1000 + 100 * len(RECORD_TYPES) - 1}); was the message written with a "
            "Schema Registry? Configure kafka.schema_registry_url to read it"
        )
    for candidate in versions(RECORD_TYPES[index]):
        if candidate.version == version:
            return candidate
    raise UnknownSchemaError(
        f"schema id {schema_id} names {RECORD_TYPES[index]} v{version}, which this "
        "release does not have; upgrade Pantau to read it"
    )
