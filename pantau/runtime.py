"""Clean shutdown for long-running workers: one stop event set by SIGINT or
SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

log = logging.getLogger("pantau.runtime")


def install_stop_handlers(stop: threading.Event, service: str) -> None:
    """Set ``stop`` on SIGINT or SIGTERM; a second signal is left to the default
    handler, so a stuck worker can still be interrupted."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "stopping after the current batch service=%s signal=%s",
            service,
            signal.Signals(signum).name,
        )
        stop.set()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
