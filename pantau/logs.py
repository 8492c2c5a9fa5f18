"""One logging set-up for every Pantau entry point."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"

# Libraries that are chatty at INFO; their warnings still show.
_QUIET = ("faust", "mode", "aiokafka", "kafka", "urllib3", "httpx")


def configure_logging(level: str = "INFO") -> None:
    """Send Pantau's log lines (prose plus key=value fields) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
