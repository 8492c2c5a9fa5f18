"""Backward-compatibility check between two versions of a schema.

Backward compatible means a reader on the new version reads every message written
with the old one. The check writes random records of the old schema (every union
branch and enum symbol is reached with enough samples) and reads them back with the
new schema through Avro schema resolution.
"""

from __future__ import annotations

import io
from typing import Any

import fastavro
from fastavro.read import SchemaResolutionError
from fastavro.utils import generate_many


def backward_problems(
    old_schema: Any, new_schema: Any, samples: int = 300
) -> list[str]:
    """Reasons why ``new_schema`` cannot read data written with ``old_schema``;
    empty when it can."""
    problems: list[str] = []
    for record in generate_many(old_schema, samples):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, old_schema, record)
        buffer.seek(0)
        try:
            fastavro.schemaless_reader(buffer, old_schema, new_schema)
        except (SchemaResolutionError, ValueError, KeyError) as error:
            problems.append(f"{type(error).__name__}: {error}")
            break
    return problems
