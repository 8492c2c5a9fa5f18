"""A library repeating one line during an outage is held to one line per
interval, and the line that passes says how many were held back."""

from __future__ import annotations

import logging

from pantau.logs import RepeatFilter


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, None)


def test_repeats_of_a_library_line_are_held_back_then_counted() -> None:
    clock = Clock()
    repeats = RepeatFilter(("aiokafka",), interval_s=10.0, clock=clock)
    template = "Unable connect to node with id %s: %s"
    passed = []
    for second in range(25):
        clock.now_s = float(second)
        for _ in range(100):
            record = _record("aiokafka.conn", template, 1, "refused")
            if repeats.filter(record):
                passed.append(record.getMessage())
    assert passed == [
        "Unable connect to node with id 1: refused",
        "Unable connect to node with id 1: refused (999 more like this held back "
        "in the last 10 s)",
        "Unable connect to node with id 1: refused (999 more like this held back "
        "in the last 10 s)",
    ]


def test_other_templates_and_pantau_lines_always_pass() -> None:
    repeats = RepeatFilter(("aiokafka",), clock=Clock())
    assert repeats.filter(_record("aiokafka", "fetch failed from %s", 1))
    assert repeats.filter(_record("aiokafka", "heartbeat failed to %s", 1))
    for _ in range(3):
        assert repeats.filter(_record("pantau.sink", "insert failed rows=%s", 4))
