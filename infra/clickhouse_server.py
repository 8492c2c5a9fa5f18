"""A ClickHouse HTTP server on loopback, run by chDB in a process of its own.

chDB allows one process per data directory, yet a sink, `pantau sql` and a web page
all need the same tables. `EmbeddedClickHouse` starts `infra.chdb_serve` detached and
every process, this one included, then talks to it over HTTP with clickhouse-connect,
as it would to a real server. Everything it owns lives under one state folder:

    <state_dir>/clickhouse/data         chDB's data directory (survives restarts)
    <state_dir>/clickhouse/run          working directory: config.xml, stop FIFO
    <state_dir>/clickhouse/server.log   the server's stdout and stderr
    <state_dir>/clickhouse/server.json  pid, port and start time of the running server
"""

from __future__ import annotations

import http.client
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.exceptions import ClickHouseError

from infra import processes
from infra.ports import LOOPBACK, port_is_free

log = logging.getLogger("pantau.infra.clickhouse")

SERVE_MODULE = "infra.chdb_serve"

_LOG_TAIL_LINES = 20
# What infra.chdb_serve logs once chDB has shut down cleanly.
_CLEAN_STOP_LINE = "chdb server stopped cleanly"
_PROBE_TIMEOUT_S = 2.0
_STATE_INT_KEYS = ("pid", "port")
# Only the server process gets signals: its chDB threads go with it, and nothing else
# runs in its session.
_KIND = processes.ServerKind(name="clickhouse server", signal_group=False, log=log)
# The folder that holds the `infra` package, for the child's PYTHONPATH.
_CODE_ROOT = Path(__file__).resolve().parent.parent


class ClickHouseStartError(RuntimeError):
    """The server could not be started, or did not become ready in time."""


class EmbeddedClickHouse:
    """One chDB process serving the ClickHouse HTTP protocol on 127.0.0.1."""

    def __init__(self, state_dir: Path, http_port: int) -> None:
        if not 0 < http_port < 65536:
            raise ValueError(
                f"clickhouse http_port must be in 1..65535, got {http_port}"
            )
        self.state_dir = Path(state_dir).resolve()
        self.http_port = http_port
        self.clickhouse_dir = self.state_dir / "clickhouse"
        self.data_dir = self.clickhouse_dir / "data"
        self.run_dir = self.clickhouse_dir / "run"
        self.log_path = self.clickhouse_dir / "server.log"
        self.state_path = self.clickhouse_dir / "server.json"
        self._process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"EmbeddedClickHouse(url={self.url!r}, state_dir='{self.state_dir}')"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"

    @classmethod
    def from_state(cls, state_dir: Path) -> EmbeddedClickHouse | None:
        """Rebuild the launcher of a server started earlier, from its server.json.

        Returns None when there is no server.json (never started, or stopped). The
        server may have died since: ask `is_running()`.
        """
        state_path = Path(state_dir) / "clickhouse" / "server.json"
        state = processes.read_state(state_path, _STATE_INT_KEYS)
        return None if state is None else cls(state_dir, int(state["port"]))

    @property
    def pid(self) -> int | None:
        """The server's pid as server.json records it; None when none was started."""
        return processes.recorded_pid(self.state_path, _STATE_INT_KEYS)

    def is_running(self) -> bool:
        """Tell whether the server that server.json names is alive."""
        pid = self.pid
        return pid is not None and self._is_our_server(pid)

    def start(self, timeout_s: float = 60) -> None:
        """Start the server; return once it answers /ping and `SELECT 1`.

        Raises ClickHouseStartError when a server of this state folder already runs,
        the port is taken, the server exits during start-up (a data directory locked
        by another chDB process, for one) or it is not ready within `timeout_s`.
        """
        started = time.monotonic()
        self._check_not_running()
        if not port_is_free(self.http_port):
            raise ClickHouseStartError(
                f"clickhouse http port {self.http_port} on {LOOPBACK} is already "
                "taken; expected a free port, got one with a listener"
            )

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_offset = self._log_size()
        command = [
            sys.executable,
            "-m",
            SERVE_MODULE,
            "--data-dir",
            str(self.data_dir),
            "--http-port",
            str(self.http_port),
            "--run-dir",
            str(self.run_dir),
        ]
        self._process = processes.launch_detached(
            command, output_path=self.log_path, cwd=self.run_dir, env=_child_env()
        )
        self._write_state(self._process.pid)
        log.info(
            "clickhouse server starting url=%s pid=%s data_dir=%s",
            self.url,
            self._process.pid,
            self.data_dir,
        )

        self._wait_ready(self._process, timeout_s, log_offset)
        log.info(
            "clickhouse server ready url=%s pid=%s startup_s=%.2f",
            self.url,
            self._process.pid,
            time.monotonic() - started,
        )

    def stop(self, timeout_s: float = 30) -> bool:
        """Stop the server; return whether one was running and has now stopped.

        Sends SIGTERM to the pid in server.json (only while its command line is this
        state folder's `infra.chdb_serve`), waits up to `timeout_s` for the clean
        shutdown, then sends SIGKILL.
        """
        pid = self.pid
        if pid is None:
            return False
        if not self._is_our_server(pid):
            processes.remove_stale_state(self.state_path, pid, _KIND)
            return False

        stopping = time.monotonic()
        log_offset = self._log_size()
        forced = processes.terminate(
            pid, timeout_s, _KIND, child=self._process, is_ours=self._is_our_server
        )
        self.state_path.unlink(missing_ok=True)
        clean = _CLEAN_STOP_LINE in self._read_log(log_offset)
        log.info(
            "clickhouse server stopped pid=%s stop_s=%.1f clean=%s",
            pid,
            time.monotonic() - stopping,
            clean,
        )
        if not clean and not forced:
            log.warning(
                "clickhouse server exited without its clean shutdown pid=%s: chDB "
                "gives up on connections still open about 5 s after SIGTERM; queries "
                "running then were cut off",
                pid,
            )
        return True

    def log_tail(self, lines: int = _LOG_TAIL_LINES, offset: int = 0) -> str:
        """Return the last `lines` of server.log written after byte `offset`."""
        tail = self._read_log(offset).splitlines()[-lines:]
        return "\n".join(tail) if tail else f"(nothing in {self.log_path})"

    def _log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def _read_log(self, offset: int) -> str:
        return processes.read_log_end(self.log_path, offset_bytes=offset)

    def _check_not_running(self) -> None:
        pid = self.pid
        if pid is None:
            return
        if self._is_our_server(pid):
            state = processes.read_state(self.state_path, _STATE_INT_KEYS) or {}
            raise ClickHouseStartError(
                f"a clickhouse server of {self.state_dir} already runs (pid={pid}, "
                f"url=http://{LOOPBACK}:{state.get('port')}); expected none, connect "
                "to it or stop it first"
            )
        processes.remove_stale_state(self.state_path, pid, _KIND)

    def _wait_ready(
        self, process: subprocess.Popen[bytes], timeout_s: float, log_offset: int
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            exit_code = process.poll()
            if exit_code is not None:
                self.state_path.unlink(missing_ok=True)
                raise ClickHouseStartError(
                    f"clickhouse server exited with code {exit_code} during start-up, "
                    f"expected it to keep running; last lines of {self.log_path}:\n"
                    f"{self.log_tail(offset=log_offset)}"
                )
            if _answers_ping(self.url) and _answers_select(self.http_port):
                return
            if time.monotonic() >= deadline:
                processes.kill_child(process, _KIND)
                self.state_path.unlink(missing_ok=True)
                raise ClickHouseStartError(
                    "clickhouse server did not answer /ping and SELECT 1 on "
                    f"{self.url} within {timeout_s:.0f} s; it was killed. "
                    f"Last lines of {self.log_path}:\n"
                    f"{self.log_tail(offset=log_offset)}"
                )
            time.sleep(0.1)

    def _is_our_server(self, pid: int) -> bool:
        if processes.child_has_exited(self._process, pid):
            return False
        args = processes.process_args(pid)
        return SERVE_MODULE in args and str(self.data_dir) in args

    def _write_state(self, pid: int) -> None:
        details = {
            "port": self.http_port,
            "url": self.url,
            "data_dir": str(self.data_dir),
        }
        processes.write_state(self.state_path, pid, details)


def _answers_ping(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=_PROBE_TIMEOUT_S) as reply:
            body: bytes = reply.read()
    except (OSError, http.client.HTTPException) as exc:
        log.debug("clickhouse server not answering /ping yet error=%s", exc)
        return False
    return body.strip() == b"Ok."


def _answers_select(http_port: int) -> bool:
    try:
        client = clickhouse_connect.get_client(
            host=LOOPBACK,
            port=http_port,
            # Its own pool, closed below: an idle keep-alive connection left behind
            # would hold up the server's shutdown by its keep-alive timeout.
            dedicated_pool=True,
            connect_timeout=_PROBE_TIMEOUT_S,
            send_receive_timeout=_PROBE_TIMEOUT_S,
        )
        try:
            answer = client.command("SELECT 1")
        finally:
            client.close()
    except ClickHouseError as exc:
        log.debug("clickhouse server not answering SELECT 1 yet error=%s", exc)
        return False
    return bool(answer == 1)


def _child_env() -> dict[str, str]:
    # The child must import the same `infra` as this process, installed or not.
    env = dict(os.environ)
    paths = [
        str(_CODE_ROOT),
        *filter(None, env.get("PYTHONPATH", "").split(os.pathsep)),
    ]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env
