"""One logging set-up for every Pantau entry point."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable

_FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"

# Libraries that are chatty at INFO; their warnings still show.
_QUIET = ("faust", "mode", "aiokafka", "kafka", "urllib3", "httpx")


class RepeatFilter(logging.Filter):
    """Lets a library's line through once per ``interval_s`` for each message
    template; the next one that passes says how many were held back.

    While the broker is away aiokafka logs the same connection error thousands
    of times a second; one line every ten seconds says as much.
    """

    def __init__(
        self,
        prefixes: tuple[str, ...],
        interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._interval_s = interval_s
        self._clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self._prefixes):
            return True
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self._interval_s:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        self._seen[key] = (now, 0)
        if last is not None and last[1]:
            record.msg = (
                f"{record.msg} ({last[1]} more like this held back in the last "
                f"{now - last[0]:.0f} s)"
            )
        return True


def configure_logging(level: str = "INFO") -> None:
    """Send Pantau's log lines (prose plus key=value fields) to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
    handler.addFilter(RepeatFilter(_QUIET))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
