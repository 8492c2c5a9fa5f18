"""The detached-process bookkeeping both launchers share, on short-lived children."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra import processes

LOG = logging.getLogger("pantau.test.processes")
KIND = processes.ServerKind(name="test server", signal_group=True, log=LOG)

# Sleeps until killed; with "ignore-term" it shrugs off SIGTERM. Says "ready" once set.
SLEEPER = """\
import signal, sys, time
if "ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""

StartSleeper = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def start_sleeper(tmp_path: Path) -> Iterator[StartSleeper]:
    started: list[subprocess.Popen[bytes]] = []

    def start(*extra_args: str) -> subprocess.Popen[bytes]:
        output_path = tmp_path / f"sleeper-{len(started)}.log"
        child = processes.launch_detached(
            [sys.executable, "-c", SLEEPER, *extra_args],
            output_path=output_path,
            cwd=tmp_path,
        )
        started.append(child)
        deadline = time.monotonic() + 10
        while "ready" not in processes.read_log_end(output_path):
            assert time.monotonic() < deadline, "the sleeper did not start in 10 s"
            time.sleep(0.02)
        return child

    yield start
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()


@pytest.mark.parametrize(
    ("int_keys", "text", "expected"),
    [
        (("pid",), "[]", "expected a JSON object with an integer pid, got '[]'"),
        (("pid",), '{"pid": "7"}', "with an integer pid, got "),
        (("pid", "port"), '{"pid": 7}', "with integer pid and port, got "),
        (("pid", "port"), '{"pid": 7, "port": 1.5}', "integer pid and port, got "),
    ],
)
def test_read_state_names_the_keys_it_expected(
    tmp_path: Path, int_keys: tuple[str, ...], text: str, expected: str
) -> None:
    path = tmp_path / "server.json"
    path.write_text(text)

    with pytest.raises(ValueError, match=expected.replace("[", r"\[")) as raised:
        processes.read_state(path, int_keys)

    assert str(raised.value).startswith(f"{path}: ")


def test_read_state_of_a_missing_file_is_none(tmp_path: Path) -> None:
    assert processes.read_state(tmp_path / "server.json", ("pid",)) is None
    assert processes.recorded_pid(tmp_path / "server.json", ("pid",)) is None


def test_write_state_puts_pid_first_and_start_time_last(tmp_path: Path) -> None:
    path = tmp_path / "server.json"

    processes.write_state(path, 1234, {"port": 8123, "url": "http://127.0.0.1:8123"})

    state = json.loads(path.read_text())
    assert list(state) == ["pid", "port", "url", "started_at"]
    assert processes.read_state(path, ("pid", "port")) == state
    assert processes.recorded_pid(path, ("pid", "port")) == 1234
    assert path.read_text().endswith("}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["server.json"]


def test_remove_stale_state_logs_and_tolerates_a_missing_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "server.json"
    processes.write_state(path, 99, {})

    with caplog.at_level(logging.INFO, logger=LOG.name):
        processes.remove_stale_state(path, 99, KIND)
        processes.remove_stale_state(path, 99, KIND)

    assert not path.exists()
    assert caplog.messages[0] == (
        "test server not running, removing stale server.json pid=99"
    )


@pytest.mark.parametrize(
    ("offset_bytes", "expected"),
    [(0, "one\ntwo\n"), (4, "two\n"), (100, "")],
)
def test_read_log_end_starts_at_the_offset(
    tmp_path: Path, offset_bytes: int, expected: str
) -> None:
    path = tmp_path / "server.log"
    path.write_text("one\ntwo\n")

    assert processes.read_log_end(path, offset_bytes) == expected


def test_read_log_end_reads_at_most_the_last_64_kib(tmp_path: Path) -> None:
    path = tmp_path / "server.log"
    path.write_bytes(b"x" * 100_000 + b"\nlast line\n")

    text = processes.read_log_end(path)

    assert len(text) == 65536
    assert text.endswith("\nlast line\n")
    assert processes.read_log_end(tmp_path / "missing.log") == ""


def test_run_tool_returns_a_failure_and_output_tail_keeps_the_end() -> None:
    script = "import sys; print('a\\nb\\nc'); print('d', file=sys.stderr); sys.exit(3)"

    result = processes.run_tool([sys.executable, "-c", script], timeout_s=30)

    assert result.returncode == 3
    assert processes.output_tail(result, 2) == "c\nd"


def test_run_tool_raises_when_the_tool_outlives_its_timeout() -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        processes.run_tool(
            [sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5
        )


def test_a_launched_child_leads_its_own_session(start_sleeper: StartSleeper) -> None:
    child = start_sleeper()

    assert os.getsid(child.pid) == child.pid
    args = processes.process_args(child.pid)
    assert args[:2] == [sys.executable, "-c"]
    assert args[-1] == ""
    assert not processes.child_has_exited(child, child.pid)


def test_terminate_stops_a_child_with_sigterm(start_sleeper: StartSleeper) -> None:
    child = start_sleeper()

    forced = processes.terminate(
        child.pid, 10, KIND, child=child, is_ours=lambda _pid: True
    )

    assert not forced
    assert child.returncode == -signal.SIGTERM
    assert processes.child_has_exited(child, child.pid)
    assert processes.process_args(child.pid) == []
    # Gone already: neither a signal nor a kill may raise.
    processes.send_signal(child.pid, signal.SIGTERM, to_group=True)
    processes.kill_child(child, KIND)


def test_terminate_kills_a_child_that_ignores_sigterm(
    start_sleeper: StartSleeper, caplog: pytest.LogCaptureFixture
) -> None:
    child = start_sleeper("ignore-term")

    with caplog.at_level(logging.WARNING, logger=LOG.name):
        forced = processes.terminate(
            child.pid, 0.5, KIND, child=child, is_ours=lambda _pid: True
        )

    assert forced
    assert child.returncode == -signal.SIGKILL
    assert caplog.messages == [
        f"test server ignored SIGTERM, killing it pid={child.pid} waited_s=0.5"
    ]


@pytest.mark.parametrize(("still_ours", "expected"), [(False, True), (True, False)])
def test_wait_exit_of_a_stranger_asks_the_identity_check(
    still_ours: bool, expected: bool
) -> None:
    # Not our child: only `is_ours` tells whether the pid still is the server.
    exited = processes.wait_exit(
        os.getpid(), 0.3, child=None, is_ours=lambda _pid: still_ours
    )

    assert exited is expected


def test_wait_released_sees_exited_and_zombie_processes() -> None:
    child = subprocess.Popen(["sleep", "0.2"])
    try:
        assert processes.wait_released(child.pid, 5.0)  # a zombie until reaped
    finally:
        child.wait()
    assert processes.wait_released(child.pid, 0.1)  # reaped: gone
    running = subprocess.Popen(["sleep", "5"])
    try:
        assert not processes.wait_released(running.pid, 0.2)
    finally:
        running.kill()
        running.wait()
