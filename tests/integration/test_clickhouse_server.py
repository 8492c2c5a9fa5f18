"""The chDB ClickHouse server with real clients: concurrency, restarts, refusals."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import clickhouse_connect
import pyarrow as pa
import pytest

from infra.clickhouse_server import ClickHouseStartError, EmbeddedClickHouse
from infra.ports import LOOPBACK, free_port

pytestmark = pytest.mark.integration

ROWS = 100_000
BATCH_ROWS = 10_000
CAMERAS = 50


def _client(server: EmbeddedClickHouse) -> Any:
    return clickhouse_connect.get_client(host=LOOPBACK, port=server.http_port)


def _create_table(server: EmbeddedClickHouse) -> str:
    table = f"detections_{uuid.uuid4().hex[:12]}"
    client = _client(server)
    client.command(
        f"CREATE TABLE {table} (camera_id String, captured_at DateTime64(3, 'UTC'), "
        "people UInt16, seq UInt64) "
        "ENGINE = MergeTree ORDER BY (camera_id, captured_at)"
    )
    client.close()
    return table


def _batch(start: int, rows: int) -> pa.Table:
    seq = range(start, start + rows)
    return pa.table(
        {
            "camera_id": pa.array([f"jkt-{i % CAMERAS:03d}" for i in seq]),
            "captured_at": pa.array(
                [1_780_000_000_000 + i * 100 for i in seq], pa.timestamp("ms", "UTC")
            ),
            "people": pa.array([i % 7 for i in seq], pa.uint16()),
            "seq": pa.array(seq, pa.uint64()),
        }
    )


def _insert_batches(server: EmbeddedClickHouse, table: str) -> None:
    client = _client(server)
    for start in range(0, ROWS, BATCH_ROWS):
        # One Arrow stream per insert: chDB keeps only the first of several.
        client.insert_arrow(table, _batch(start, BATCH_ROWS))
    client.close()


def _count_until(
    server: EmbeddedClickHouse, table: str, done: threading.Event
) -> list[int]:
    client = _client(server)
    counts = []
    while not done.is_set():
        counts.append(int(client.command(f"SELECT count() FROM {table}")))
    client.close()
    return counts


def _totals(server: EmbeddedClickHouse, table: str) -> tuple[int, int, int]:
    client = _client(server)
    rows = client.query(
        f"SELECT count(), sum(seq), uniqExact(camera_id) FROM {table}"
    ).result_rows
    client.close()
    count, seq_sum, cameras = rows[0]
    return int(count), int(seq_sum), int(cameras)


def test_concurrent_clients_and_restart(tmp_path: Path) -> None:
    server = EmbeddedClickHouse(tmp_path, http_port=free_port())
    server.start()
    try:
        assert server.is_running()
        assert EmbeddedClickHouse.from_state(tmp_path) is not None
        table = _create_table(server)

        done = threading.Event()
        with ThreadPoolExecutor(max_workers=2) as pool:
            reader = pool.submit(_count_until, server, table, done)
            writer = pool.submit(_insert_batches, server, table)
            try:
                writer.result(timeout=120)
            finally:
                done.set()
            counts = reader.result(timeout=30)

        assert counts, "the reading client never got an answer"
        # Each Arrow insert is one atomic part: a reader sees whole batches only.
        assert all(count % BATCH_ROWS == 0 for count in counts), counts
        assert counts == sorted(counts)
        expected = (ROWS, ROWS * (ROWS - 1) // 2, CAMERAS)
        assert _totals(server, table) == expected
    finally:
        assert server.stop()

    assert not server.is_running()
    assert not server.state_path.exists()
    assert EmbeddedClickHouse.from_state(tmp_path) is None
    assert "chdb server stopped cleanly" in server.log_path.read_text()

    # Same state folder, another port: the data is still there.
    restarted = EmbeddedClickHouse(tmp_path, http_port=free_port())
    restarted.start()
    try:
        assert _totals(restarted, table) == expected
    finally:
        assert restarted.stop()


def test_second_server_on_same_state_dir_is_refused(
    clickhouse_server: EmbeddedClickHouse,
) -> None:
    second = EmbeddedClickHouse(clickhouse_server.state_dir, http_port=free_port())
    with pytest.raises(ClickHouseStartError, match="already runs"):
        second.start()
    assert clickhouse_server.is_running()


def test_taken_port_is_refused(
    clickhouse_server: EmbeddedClickHouse, tmp_path: Path
) -> None:
    other = EmbeddedClickHouse(tmp_path, http_port=clickhouse_server.http_port)
    with pytest.raises(ClickHouseStartError, match=rf"port {other.http_port}\b.*taken"):
        other.start()
    assert not other.state_path.exists()


def test_locked_data_dir_fails_with_the_log_lines(tmp_path: Path) -> None:
    first = EmbeddedClickHouse(tmp_path, http_port=free_port())
    first.start()
    # Hide the first server's record, as if it had been started by hand: the second
    # process gets as far as chDB, which refuses the locked data directory.
    record = first.state_path.read_text()
    first.state_path.unlink()
    try:
        second = EmbeddedClickHouse(tmp_path, http_port=free_port())
        with pytest.raises(ClickHouseStartError, match="Cannot lock file"):
            second.start(timeout_s=30)
        assert not second.is_running()
    finally:
        first.state_path.write_text(record)

    # The failed start left the first server alone, stop included.
    assert first.is_running()
    assert _client(first).command("SELECT 1") == 1
    log_offset = first.log_path.stat().st_size
    assert first.stop(timeout_s=10)
    assert b"stopped cleanly" in first.log_path.read_bytes()[log_offset:]


def test_stop_without_a_server(tmp_path: Path) -> None:
    server = EmbeddedClickHouse(tmp_path, http_port=free_port())
    assert EmbeddedClickHouse.from_state(tmp_path) is None
    assert not server.is_running()
    assert server.stop() is False
