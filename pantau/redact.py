"""Hide credentials in URLs before they reach a log line, a repr or an error."""

from __future__ import annotations

import re

__all__ = ["SECRET_NAME_FRAGMENTS", "looks_secret", "redact_url"]

MASK = "***"

# A name containing any of these (case-insensitively) holds a secret: query
# parameters, librdkafka properties, configuration field names.
SECRET_NAME_FRAGMENTS = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "auth",
    "key",
    "signature",
    "credential",
)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def looks_secret(name: str) -> bool:
    """Whether a parameter or field called ``name`` should never be shown."""
    lowered = name.lower()
    return any(fragment in lowered for fragment in SECRET_NAME_FRAGMENTS)


def redact_url(url: str) -> str:
    """Return ``url`` with its user-info and secret query parameters masked.

    ``rtsp://admin:hunter2@10.0.0.7/stream?token=abc&ch=1`` becomes
    ``rtsp://***@10.0.0.7/stream?token=***&ch=1``. Strings without a
    ``scheme://`` prefix (plain file paths) come back unchanged.
    """
    scheme = _SCHEME.match(url)
    if scheme is None:
        return url

    head, rest = url[: scheme.end()], url[scheme.end() :]
    fragment = ""
    if "#" in rest:
        rest, fragment = rest.split("#", 1)
        fragment = "#" + fragment
    query = None
    if "?" in rest:
        rest, query = rest.split("?", 1)

    # Everything up to the last "@" before the query is user-info. A password
    # with an unescaped "/" would fool a strict authority parser, so the "@" is
    # looked for in the whole remainder rather than only before the first "/".
    if "@" in rest:
        rest = MASK + rest[rest.rindex("@") :]

    if query is not None:
        rest += "?" + _redact_query(query)
    return head + rest + fragment


def _redact_query(query: str) -> str:
    parts = []
    for part in query.split("&"):
        name, sep, _value = part.partition("=")
        if sep and looks_secret(name):
            parts.append(f"{name}={MASK}")
        else:
            parts.append(part)
    return "&".join(parts)
