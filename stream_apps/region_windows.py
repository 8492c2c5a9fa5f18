"""Stage two of the windows app: region windows summed from every partition.

Stage one forwards, keyed by region window, each detections partition's share of
that window (its "partial", with a revision that grows with every change) and
its event-time watermark. Here a region window keeps the latest partial of every
source partition and publishes their sum whenever one changes.

A region window closes when every source partition's watermark has passed its
end plus the grace period: by then each partition has sent its final partial,
because it sends its watermark only after them. A source partition that has
said nothing for ``idle_ms`` of wall time (a partition with no cameras, or a
stopped producer) stops holding region windows open; a partial that arrives after
its window closed is reported, never counted silently.

Crash safety is the same as stage one's: the writes of one message are
committed as one, replayed messages at or below the last applied offset are
skipped, and final region windows leave through an outbox that a worker taking
over the partition sends again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from schemas.records import WindowAggregate
from stream_apps.camera_windows import PartialMessage, WatermarkMessage
from stream_apps.journal import (
    Changes,
    forget_outbox,
    plain_copy,
    recovered_clock,
)
from stream_apps.tally import Scope, add_aggregate, empty_aggregate
from stream_apps.window_settings import Store, WindowSettings


class SourceClock(TypedDict):
    watermark_ms: int
    seen_at_ms: int


class RegionClock(TypedDict):
    applied_offset: int
    created_at_ms: int
    effective_ms: int
    sources: dict[str, SourceClock]
    pending: list[int]
    outbox: list[str]


@dataclass
class RegionOutputs:
    """Region windows to publish, the outbox entries among them (to pass to
    ``delivered`` once Kafka has acknowledged them), and partials that came
    too late, each with the reason."""

    windows: list[WindowAggregate] = field(default_factory=list)
    outbox: list[str] = field(default_factory=list)
    late: list[tuple[str, PartialMessage, str]] = field(default_factory=list)


class RegionWindows:
    """The per-partition region logic over a changelog-backed table."""

    def __init__(self, settings: WindowSettings, table: Store) -> None:
        self.settings = settings
        self.table = table

    def on_partial(
        self,
        partition: int,
        offset: int,
        key: str,
        message: PartialMessage,
        now_ms: int,
    ) -> RegionOutputs:
        """Take one partition's share of a region window."""
        out = RegionOutputs()
        resumed = self._resume(partition, out)
        if resumed is not None and offset <= resumed["applied_offset"]:
            return out
        store = Changes(self.table)
        clock = self._clock(store, partition, now_ms)
        self._take_partial(
            store, partition, clock=clock, key=key, message=message, out=out
        )
        if out.late:
            # Nothing is written: the worker acknowledges it once it is on
            # the dead-letter topic.
            return out
        clock["applied_offset"] = offset
        store[_clock_key(partition)] = clock
        store.commit(_journal_key(partition), offset)
        return out

    def on_watermark(
        self, partition: int, offset: int, message: WatermarkMessage, now_ms: int
    ) -> RegionOutputs:
        """Note a source partition's progress; close what every source passed."""
        out = RegionOutputs()
        resumed = self._resume(partition, out)
        if resumed is not None and offset <= resumed["applied_offset"]:
            return out
        store = Changes(self.table)
        clock = self._clock(store, partition, now_ms)
        clock["applied_offset"] = offset
        source = str(message["source"])
        known = clock["sources"].get(source)
        watermark_ms = message["watermark_ms"]
        if known is not None:
            watermark_ms = max(watermark_ms, known["watermark_ms"])
        clock["sources"][source] = {"watermark_ms": watermark_ms, "seen_at_ms": now_ms}
        clock["effective_ms"] = max(
            clock["effective_ms"], self._effective(clock, now_ms)
        )
        finals: list[WindowAggregate] = []
        while clock["pending"] and clock["pending"][0] <= clock["effective_ms"]:
            closes_at_ms = clock["pending"].pop(0)
            self._close(store, partition, clock, closes_at_ms, finals)
        if finals:
            outbox_key = f"Q{partition}|outbox|{offset}"
            store[outbox_key] = finals
            clock["outbox"].append(outbox_key)
            out.outbox.append(outbox_key)
            out.windows.extend(plain_copy(finals))
        store[_clock_key(partition)] = clock
        store.commit(_journal_key(partition), offset)
        return out

    def next_offset(self, partition: int) -> int | None:
        """The offset this partition must go on from: one past the last message
        applied or acknowledged; None before the first."""
        # Only the clock is needed: what the outbox holds is sent again when
        # the message itself is handled.
        clock = recovered_clock(
            self.table, _clock_key(partition), _journal_key(partition)
        )
        return None if clock is None else int(clock["applied_offset"]) + 1

    def acknowledge(self, partition: int, offset: int, now_ms: int) -> None:
        """A message that changed nothing (a late partial, a bad message) is
        dealt with: a replay skips it."""
        clock = self._clock(self.table, partition, now_ms)
        if offset > clock["applied_offset"]:
            clock = plain_copy(clock)
            clock["applied_offset"] = offset
            self.table[_clock_key(partition)] = clock

    def delivered(self, partition: int, outbox: list[str]) -> None:
        """Kafka acknowledged the outbox entries: forget them."""
        forget_outbox(self.table, _clock_key(partition), outbox)

    def _resume(self, partition: int, out: RegionOutputs) -> RegionClock | None:
        """Finish what a killed worker left half-applied, send again what its
        outbox still holds; returns the partition's clock."""
        clock: RegionClock | None = recovered_clock(
            self.table, _clock_key(partition), _journal_key(partition)
        )
        if clock is None:
            return None
        for key in clock["outbox"]:
            entry: list[WindowAggregate] | None = self.table.get(key)
            out.windows.extend(plain_copy(entry or []))
        out.outbox.extend(clock["outbox"])
        return clock

    def _take_partial(
        self,
        store: Store,
        partition: int,
        *,
        clock: RegionClock,
        key: str,
        message: PartialMessage,
        out: RegionOutputs,
    ) -> None:
        part = message["aggregate"]
        source = str(message["source"])
        state_key = f"Q{partition}|win|{key}"
        state: dict[str, Any] | None = store.get(state_key)
        if state is None:
            closes_at_ms = part["window_end_ms"] + self.settings.grace_ms
            if closes_at_ms <= clock["effective_ms"]:
                out.late.append((key, message, _late_reason(clock, closes_at_ms)))
                return
            state = {"final": False, "revision": 0, "parts": {}}
            self._register(store, partition, clock, closes_at_ms, f"W|{key}")
        if state["final"]:
            if part["revision"] > state["revisions"].get(source, 0):
                closes_at_ms = part["window_end_ms"] + self.settings.grace_ms
                out.late.append((key, message, _late_reason(clock, closes_at_ms)))
            return
        previous: WindowAggregate | None = state["parts"].get(source)
        if previous is not None and previous["revision"] >= part["revision"]:
            return
        state["parts"][source] = part
        state["revision"] += 1
        store[state_key] = state
        out.windows.append(_total(state))

    def _effective(self, clock: RegionClock, now_ms: int) -> int:
        """The slowest watermark among the source partitions that are not idle;
        0 (no progress) while every source is idle."""
        lowest: int | None = None
        for source in range(self.settings.source_partitions):
            known = clock["sources"].get(str(source))
            seen_at_ms = (
                clock["created_at_ms"] if known is None else known["seen_at_ms"]
            )
            if now_ms - seen_at_ms > self.settings.idle_ms:
                continue
            watermark_ms = 0 if known is None else known["watermark_ms"]
            lowest = watermark_ms if lowest is None else min(lowest, watermark_ms)
        return lowest or 0

    def _clock(self, store: Store, partition: int, now_ms: int) -> RegionClock:
        clock: RegionClock | None = store.get(_clock_key(partition))
        if clock is None:
            clock = {
                "applied_offset": -1,
                "created_at_ms": now_ms,
                "effective_ms": 0,
                "sources": {},
                "pending": [],
                "outbox": [],
            }
        return clock

    def _register(
        self,
        store: Store,
        partition: int,
        clock: RegionClock,
        closes_at_ms: int,
        item: str,
    ) -> None:
        index_key = _closing_key(partition, closes_at_ms)
        items: list[str] = list(store.get(index_key) or [])
        items.append(item)
        store[index_key] = items
        if closes_at_ms not in clock["pending"]:
            clock["pending"].append(closes_at_ms)
            clock["pending"].sort()

    def _close(
        self,
        store: Store,
        partition: int,
        clock: RegionClock,
        closes_at_ms: int,
        finals: list[WindowAggregate],
    ) -> None:
        index_key = _closing_key(partition, closes_at_ms)
        items: list[str] = store.get(index_key) or []
        if items:
            del store[index_key]
        for item in items:
            kind, key = item.split("|", 1)
            state_key = f"Q{partition}|win|{key}"
            state: dict[str, Any] | None = store.get(state_key)
            if state is None:
                continue
            if kind == "D":
                del store[state_key]
                continue
            total = _total(state)
            total["revision"] += 1
            total["is_final"] = True
            finals.append(total)
            # Keep the revisions a while, so that a partial sent again after a
            # restart is known as a repeat rather than reported late.
            store[state_key] = {
                "final": True,
                "revisions": {
                    source: part["revision"] for source, part in state["parts"].items()
                },
            }
            forget_at_ms = closes_at_ms + self.settings.size_ms
            self._register(store, partition, clock, forget_at_ms, f"D|{key}")


def _total(state: dict[str, Any]) -> WindowAggregate:
    parts: list[WindowAggregate] = [state["parts"][s] for s in sorted(state["parts"])]
    first = parts[0]
    total = empty_aggregate(
        Scope(first["scope_level"], first["scope_id"], first["region"]),
        first["window_kind"],
        first["window_start_ms"],
        first["window_end_ms"],
    )
    for part in parts:
        add_aggregate(total, part)
    total["revision"] = state["revision"]
    total["updated_at_ms"] = max(part["updated_at_ms"] for part in parts)
    return plain_copy(total)


def _late_reason(clock: RegionClock, closes_at_ms: int) -> str:
    return (
        "partial for a region window already closed: expected before the region "
        f"watermark passed closes_at_ms={closes_at_ms}, got it at "
        f"effective_watermark_ms={clock['effective_ms']}; a source partition was "
        "idle longer than pipeline.window_idle_s"
    )


def _clock_key(partition: int) -> str:
    return f"Q{partition}|clock"


def _journal_key(partition: int) -> str:
    return f"Q{partition}|journal"


def _closing_key(partition: int, closes_at_ms: int) -> str:
    return f"Q{partition}|closing|{closes_at_ms}"
