"""Validate a configuration file and describe every problem, one per line."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pantau.config_loader import ConfigError, load_config

__all__ = ["check_config_file"]


def check_config_file(
    path: Path, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Lines ``FILE:LINE: location: message`` for ``path``; empty when valid.

    ``environ`` (default ``os.environ``) supplies the same ``PANTAU__...``
    overrides that ``load_config`` applies. Problems that came from the
    environment have no line and name their variable.
    """
    try:
        load_config(path, environ)
    except ConfigError as error:
        return error.lines()
    return []
