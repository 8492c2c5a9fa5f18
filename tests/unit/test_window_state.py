"""Tumbling windows on event time, counted once per event id."""

from __future__ import annotations

import random

import pytest

from schemas.records import DetectionEvent
from stream_apps.window_state import (
    WindowState,
    apply_event,
    camera_window_key,
    finalize,
    is_closed,
    new_camera_window,
    new_clock,
    window_start_ms,
)
from tests.records import detection_event

SIZE_MS = 900_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, 07:00 WIB


def event(event_id: str, captured_at_ms: int, people: int) -> DetectionEvent:
    return detection_event(
        event_id,
        captured_at_ms,
        people,
        camera="jkt-001",
        vehicles={"car": 1} if people % 2 else {},
    )


@pytest.mark.parametrize(
    ("captured_at_ms", "expected_start_ms"),
    [
        (T0, T0),
        (T0 + 1, T0),
        (T0 + SIZE_MS - 1, T0),
        (T0 + SIZE_MS, T0 + SIZE_MS),
        (T0 - 1, T0 - SIZE_MS),
    ],
)
def test_window_start_is_aligned(captured_at_ms: int, expected_start_ms: int) -> None:
    assert window_start_ms(captured_at_ms, SIZE_MS) == expected_start_ms


def test_key_names_scope_and_start() -> None:
    assert camera_window_key("jkt-001", T0) == f"CAMERA:jkt-001:{T0}"


def test_counts_sum_max_and_revision() -> None:
    events = [event("a", T0 + 10, 3), event("b", T0 + 20, 5), event("c", T0 + 5, 1)]
    state = new_camera_window(events[0], SIZE_MS)
    for item in events:
        assert apply_event(state, item, updated_at_ms=T0 + 99)
    aggregate = state["aggregate"]
    assert aggregate["frames"] == 3
    assert aggregate["revision"] == 3
    assert aggregate["people_sum"] == 9
    assert aggregate["people_max"] == 5
    assert aggregate["vehicles_sum"] == {"car": 3}
    assert aggregate["uncalibrated_frames"] == 3
    assert aggregate["first_captured_at_ms"] == T0 + 5
    assert aggregate["last_captured_at_ms"] == T0 + 20
    assert aggregate["window_end_ms"] - aggregate["window_start_ms"] == SIZE_MS


def test_redelivered_event_is_not_counted_twice() -> None:
    first = event("same-id", T0 + 10, 4)
    state = new_camera_window(first, SIZE_MS)
    assert apply_event(state, first, updated_at_ms=1)
    assert not apply_event(state, first, updated_at_ms=2)
    assert state["aggregate"]["frames"] == 1
    assert state["aggregate"]["people_sum"] == 4
    assert state["aggregate"]["updated_at_ms"] == 1


def test_shuffled_stream_with_duplicates_matches_independent_totals() -> None:
    rng = random.Random(7)
    events = [
        event(f"e{i}", T0 + rng.randrange(3 * SIZE_MS), rng.randrange(9))
        for i in range(300)
    ]
    stream = events + rng.sample(events, 60)
    rng.shuffle(stream)

    states: dict[str, WindowState] = {}
    for item in stream:
        key = camera_window_key(
            item["camera_id"], window_start_ms(item["captured_at_ms"], SIZE_MS)
        )
        state = states.setdefault(key, new_camera_window(item, SIZE_MS))
        apply_event(state, item, updated_at_ms=0)

    expected: dict[int, tuple[int, int]] = {}
    for item in events:
        start = item["captured_at_ms"] // SIZE_MS * SIZE_MS
        frames, people = expected.get(start, (0, 0))
        expected[start] = (frames + 1, people + item["counts"]["people"])
    got = {
        state["aggregate"]["window_start_ms"]: (
            state["aggregate"]["frames"],
            state["aggregate"]["people_sum"],
        )
        for state in states.values()
    }
    assert got == expected


def test_windows_close_after_the_grace_and_finalize_once_more() -> None:
    end = T0 + SIZE_MS
    assert not is_closed(end, 60_000, end + 59_999)
    assert is_closed(end, 60_000, end + 60_000)
    state = new_camera_window(event("a", T0 + 5, 2), SIZE_MS)
    apply_event(state, event("a", T0 + 5, 2), updated_at_ms=1)
    final = finalize(state, updated_at_ms=2)
    assert final["is_final"]
    assert final["revision"] == 2
    assert final["frames"] == 1
    assert new_clock() == {"watermark_ms": 0, "open_keys": []}
