"""Bookkeeping for the detached server processes that infra/ launches.

A launcher starts its server in a session of its own, records the pid in a JSON state
file, and later finds, signals and stops that pid again, possibly from another process.
What makes a pid "ours" differs per server, so every launcher keeps that check; the
helpers here take it as an argument, and a `ServerKind` for the rest.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# How long a process may take to go away after SIGKILL.
KILL_WAIT_S = 10.0
# The last 64 KiB of a log hold far more than anyone reads of it.
_LOG_READ_LIMIT_BYTES = 65536


@dataclass(frozen=True)
class ServerKind:
    """What the helpers need to know of one launcher's server, fixed per launcher."""

    # Names the server in log lines and errors: "kafka broker".
    name: str
    # Signal the server's whole process group, not only its pid.
    signal_group: bool
    # The launcher's logger, so that its lines keep their logger name.
    log: logging.Logger


def read_state(path: Path, int_keys: tuple[str, ...]) -> dict[str, Any] | None:
    """Read a launcher's JSON state file; None when it does not exist.

    Raises ValueError when the file is not a JSON object whose `int_keys` (the first
    of them "pid") all hold integers.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    state = json.loads(text)
    if not isinstance(state, dict) or not all(
        isinstance(state.get(key), int) for key in int_keys
    ):
        raise ValueError(
            f"{path}: expected a JSON object with {_integer_keys(int_keys)}, "
            f"got {text!r}"
        )
    return state


def recorded_pid(path: Path, int_keys: tuple[str, ...]) -> int | None:
    """Return the pid that the state file at `path` records; None without one."""
    state = read_state(path, int_keys)
    return None if state is None else int(state["pid"])


def remove_stale_state(path: Path, pid: int, kind: ServerKind) -> None:
    """Delete the state file of a server that no longer runs, and say so, once
    the process has finished exiting and released its ports."""
    wait_released(pid, KILL_WAIT_S)
    kind.log.info("%s not running, removing stale %s pid=%s", kind.name, path.name, pid)
    path.unlink(missing_ok=True)


def write_state(path: Path, pid: int, details: Mapping[str, object]) -> None:
    """Write a state file atomically: `pid`, then `details`, then the start time."""
    state = {
        "pid": pid,
        **details,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_text_atomic(path, json.dumps(state, indent=2) + "\n")


def write_text_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers see the old or the new file whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def launch_detached(
    command: Sequence[str],
    *,
    output_path: Path,
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` in a session of its own, its output appended to `output_path`.

    The new session detaches it from the launching terminal (Ctrl-C there does not
    reach it) and makes it a group leader, so `send_signal(..., to_group=True)`
    reaches everything it starts.
    """
    with output_path.open("ab") as output:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def process_args(pid: int) -> list[str]:
    """Return a process's arguments from /proc; empty when it is gone or a zombie.

    The list ends with an empty string, after the NUL that ends the last argument.
    """
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []
    if not raw:
        return []
    return raw.decode(errors="replace").split("\0")


def wait_released(pid: int, timeout_s: float) -> bool:
    """Wait until `pid` has finished exiting (gone, or a zombie whose threads
    have all ended), so that its sockets are closed; return whether it had
    within `timeout_s`.

    A killed process stops showing its command line before the kernel has closed
    its files, and the main thread of a multi-threaded process (a JVM) turns
    zombie while its other threads still hold them.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
        except (FileNotFoundError, ProcessLookupError):
            return True
        # The state letter follows the parenthesised command name.
        if stat.rpartition(")")[2].split()[:1] == ["Z"] and threads <= 1:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def child_has_exited(child: subprocess.Popen[bytes] | None, pid: int) -> bool:
    """Tell whether `pid` is `child`, this process's own child, and it has exited.

    Once poll() has reaped the child its pid may belong to anyone, so /proc/<pid> no
    longer says anything about our server.
    """
    return child is not None and child.pid == pid and child.poll() is not None


def send_signal(pid: int, sig: signal.Signals, *, to_group: bool) -> None:
    """Send `sig` to `pid`; a process that is already gone is not an error.

    With `to_group`, a pid that leads its process group (a launcher started it with
    start_new_session=True) gets the signal together with the whole group.
    """
    try:
        if to_group and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def wait_exit(
    pid: int,
    timeout_s: float,
    *,
    child: subprocess.Popen[bytes] | None,
    is_ours: Callable[[int], bool],
) -> bool:
    """Wait up to `timeout_s` for `pid` to exit; return whether it did.

    Our own `child` is waited for (and reaped); any other pid counts as gone once
    `is_ours` no longer recognises it.
    """
    if child is not None and child.pid == pid:
        try:
            child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout_s
    while is_ours(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def terminate(
    pid: int,
    timeout_s: float,
    kind: ServerKind,
    *,
    child: subprocess.Popen[bytes] | None,
    is_ours: Callable[[int], bool],
) -> bool:
    """Stop `pid` with SIGTERM, or SIGKILL after `timeout_s`; return whether killed.

    Raises RuntimeError when the process still runs `KILL_WAIT_S` after SIGKILL.
    """
    send_signal(pid, signal.SIGTERM, to_group=kind.signal_group)
    if wait_exit(pid, timeout_s, child=child, is_ours=is_ours):
        return False

    kind.log.warning(
        "%s ignored SIGTERM, killing it pid=%s waited_s=%.1f", kind.name, pid, timeout_s
    )
    send_signal(pid, signal.SIGKILL, to_group=kind.signal_group)
    if not wait_exit(pid, KILL_WAIT_S, child=child, is_ours=is_ours):
        raise RuntimeError(
            f"{kind.name} pid={pid} still runs {KILL_WAIT_S:.0f} s after SIGKILL; "
            "expected it to be gone"
        )
    return True


def kill_child(child: subprocess.Popen[bytes], kind: ServerKind) -> None:
    """SIGKILL our own `child` and reap it; log a warning when it outlives the wait."""
    send_signal(child.pid, signal.SIGKILL, to_group=kind.signal_group)
    try:
        child.wait(KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        kind.log.warning("%s survived SIGKILL pid=%s", kind.name, child.pid)


def read_log_end(path: Path, offset_bytes: int = 0) -> str:
    """Return what `path` holds after byte `offset_bytes`, at most its last 64 KiB.

    A missing file reads as empty.
    """
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(offset_bytes, file.tell() - _LOG_READ_LIMIT_BYTES))
            return file.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def run_tool(
    command: Sequence[str], timeout_s: float
) -> subprocess.CompletedProcess[str]:
    """Run a short-lived tool without stdin and capture its text output.

    A non-zero exit code is returned, not raised; a tool still running after
    `timeout_s` is killed and subprocess.TimeoutExpired raised.
    """
    return subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def output_tail(result: subprocess.CompletedProcess[str], lines: int) -> str:
    """Return the last `lines` of a tool's stdout followed by its stderr."""
    return "\n".join((result.stdout + result.stderr).splitlines()[-lines:])


def _integer_keys(keys: tuple[str, ...]) -> str:
    if len(keys) == 1:
        return f"an integer {keys[0]}"
    return f"integer {', '.join(keys[:-1])} and {keys[-1]}"
