"""What every configuration section shares."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pantau.redact import redact_url

_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def url_scheme(url: str) -> str | None:
    match = _URL_SCHEME.match(url)
    return match.group(1).lower() if match else None


class Section(BaseModel):
    """Shared settings; ``_url_fields`` are shown through ``redact_url``."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    _url_fields: ClassVar[frozenset[str]] = frozenset()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name in self._url_fields and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value
