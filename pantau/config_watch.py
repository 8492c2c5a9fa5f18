"""Follow the configuration file while a service runs, so that cameras can be
added, changed or removed without restarting anything.

A watcher reads the file again when its content changes (checked every
``interval_s``). A new version that does not validate is logged with every
problem and ignored: the service keeps its last good configuration.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path

from pantau.config import PantauConfig
from pantau.config_loader import ConfigError, load_config

log = logging.getLogger("pantau.config")

DEFAULT_INTERVAL_S = 15.0


class ConfigWatcher:
    """Gives the configuration again whenever its file changes."""

    def __init__(
        self,
        path: Path | None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._path = path
        self._interval_s = interval_s
        self._environ = environ
        self._digest = self._read_digest()
        self._next_check = time.monotonic() + interval_s

    def _read_digest(self) -> str | None:
        if self._path is None:
            return None
        try:
            return hashlib.sha256(self._path.read_bytes()).hexdigest()
        except OSError:
            return None

    def poll(self, *, force: bool = False) -> PantauConfig | None:
        """The new configuration if the file changed since the last call, else
        None; checks at most every ``interval_s`` unless forced."""
        if self._path is None:
            return None
        now = time.monotonic()
        if not force and now < self._next_check:
            return None
        self._next_check = now + self._interval_s
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return None
        self._digest = digest
        try:
            config = load_config(self._path, self._environ)
        except ConfigError as error:
            log.error(
                "configuration changed but is not valid; keeping the running "
                "one path=%s problems=%s",
                self._path,
                error,
            )
            return None
        log.info(
            "configuration reloaded path=%s cameras=%s", self._path, len(config.cameras)
        )
        return config
