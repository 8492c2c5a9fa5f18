"""All the table writes of one input message, applied as one.

A faust table writes every key to its changelog as its own message, so a worker
killed part-way through an event leaves some of that event's writes in the
changelog and not others. Replaying the event then counts it twice in some
windows and not at all in others.

A ``Changes`` holds the writes of one message aside and commits them in two
steps: first the whole set as a single journal record (one changelog message,
so it survives whole or not at all), then each key. After a restart,
``redo`` applies the journal record again when the partition's clock shows it
was not fully applied. Each stage stores, in its clock, the offset of the last
message it applied, and skips a replayed message at or below it.

Values read through a ``Changes`` are copies: faust serialises a changelog
value only when its producer buffer drains, so a stored value must never be
changed in place after it was written.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, TypedDict, TypeVar

from stream_apps.window_settings import Store

_DELETED = None

T = TypeVar("T")


class JournalRecord(TypedDict):
    offset: int
    changes_json: str


class Changes:
    """Writes of one message over ``store``, held until ``commit``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._changes: dict[str, Any] = {}

    def get(self, key: str, /) -> Any:
        if key in self._changes:
            return self._changes[key]
        value = self._store.get(key)
        return None if value is None else plain_copy(value)

    def __setitem__(self, key: str, value: Any) -> None:
        self._changes[key] = value

    def __delitem__(self, key: str) -> None:
        self._changes[key] = _DELETED

    def commit(self, journal_key: str, offset: int) -> None:
        """Write the journal record, then every key."""
        if not self._changes:
            return
        record: JournalRecord = {
            "offset": offset,
            "changes_json": json.dumps(self._changes, separators=(",", ":")),
        }
        self._store[journal_key] = record
        _apply(self._store, self._changes)
        self._changes = {}


def plain_copy(value: T) -> T:
    """A deep copy of a table value (dicts, lists, tuples, strings, numbers).

    A pickle round trip copies these about three times faster than
    ``copy.deepcopy``, which was the largest single cost of the window stages.
    """
    copied: T = pickle.loads(pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    return copied


def redo(store: Store, journal_key: str, applied_offset: int) -> bool:
    """Apply the journal record again if its message is newer than
    ``applied_offset``; True when it did."""
    record: JournalRecord | None = store.get(journal_key)
    if record is None or record["offset"] <= applied_offset:
        return False
    _apply(store, json.loads(record["changes_json"]))
    return True


def _apply(store: Store, changes: dict[str, Any]) -> None:
    for key, value in changes.items():
        if value is _DELETED:
            if store.get(key) is not None:
                del store[key]
        else:
            store[key] = value


def recovered_clock(store: Store, clock_key: str, journal_key: str) -> Any:
    """A partition's clock after finishing the journal record a killed worker
    left half-applied; None before the partition's first message."""
    clock = store.get(clock_key)
    if clock is None:
        return None
    if redo(store, journal_key, clock["applied_offset"]):
        clock = store.get(clock_key)
    return clock


def forget_outbox(store: Store, clock_key: str, outbox: list[str]) -> None:
    """Kafka acknowledged these outbox entries: delete them and take them off
    the partition's clock."""
    if not outbox:
        return
    for key in outbox:
        if store.get(key) is not None:
            del store[key]
    clock = plain_copy(store.get(clock_key))
    clock["outbox"] = [key for key in clock["outbox"] if key not in outbox]
    store[clock_key] = clock
