"""Stage one of the windows app: windows per camera on each detections partition.

Every detection event is counted, once per event id, into

- its camera's 15-minute tumbling window, published on every change;
- one-minute slices (one per ``hop``) of its camera and of its three regions, from
  which the rolling windows are summed when they close;
- this partition's share ("partial") of its regions' tumbling windows.

A region spans cameras on many partitions, so a partition only pre-sums its own
cameras and forwards the partials, keyed by region window, to the repartition
topic; stage two (``region_windows``) adds the partials of all partitions.

Each partition keeps an event-time clock: the latest capture time it has seen
(the watermark). A slice closes ``grace`` after its end; an event for a closed
slice is late and goes to the late-events topic. A window is final once all its
slices are closed. The clock is forwarded to every region partition as a
watermark message after this partition's final partials, so that stage two can
tell when every partition is done with a window.

Crash safety: the writes of one event are committed as one (``journal``), and
the clock keeps the offset of the last event applied, so a replayed event is
skipped whole. Final windows and final partials go through an outbox kept in
the table: the worker deletes an outbox entry only once Kafka has acknowledged
everything in it, and a worker taking over a partition sends again whatever
the outbox still holds. The watermark follows the outbox, so stage two never
closes a region window before the final partials of this partition arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

from schemas.records import DetectionEvent, WindowAggregate
from stream_apps.journal import (
    Changes,
    forget_outbox,
    plain_copy,
    recovered_clock,
)
from stream_apps.tally import (
    Scope,
    add_aggregate,
    add_event,
    align_ms,
    empty_aggregate,
    event_scopes,
    window_key,
)
from stream_apps.window_settings import Store, WindowSettings


class PartialMessage(TypedDict):
    """One partition's share of a region window, on the repartition topic."""

    type: Literal["partial"]
    source: int
    aggregate: WindowAggregate


class WatermarkMessage(TypedDict):
    """A partition's event-time progress, sent to every repartition partition."""

    type: Literal["watermark"]
    source: int
    watermark_ms: int


class PartitionClock(TypedDict):
    applied_offset: int
    watermark_ms: int
    closed_until_ms: int | None
    heartbeat_at_ms: int
    dirty: list[str]
    outbox: list[str]


class OutboxEntry(TypedDict):
    windows: list[WindowAggregate]
    partials: list[tuple[str, PartialMessage]]


EventOutcome = Literal["counted", "duplicate", "late", "future", "replayed"]


@dataclass
class CameraOutputs:
    """What one event produced: result windows and repartition messages, the
    outbox entries they include (to pass to ``delivered`` once Kafka has
    acknowledged them), and a watermark for every region partition, to send
    only after those acknowledgements."""

    outcome: EventOutcome = "counted"
    windows: list[WindowAggregate] = field(default_factory=list)
    partials: list[tuple[str, PartialMessage]] = field(default_factory=list)
    outbox: list[str] = field(default_factory=list)
    watermark: WatermarkMessage | None = None


class CameraWindows:
    """The per-partition window logic over a changelog-backed table."""

    def __init__(self, settings: WindowSettings, table: Store) -> None:
        self.settings = settings
        self.table = table
        # Per partition: the revision of each share already forwarded by
        # idle_partials, so that a quiet partition sends each share once.
        self._idle_sent: dict[int, dict[str, int]] = {}

    def idle_partials(
        self, partition: int, now_ms: int
    ) -> list[tuple[str, PartialMessage]]:
        """The region shares of a partition that changed since they were last
        forwarded, once no event has come for a heartbeat: so that region
        windows catch up when the partition's cameras fall quiet. Read only:
        the next event forwards them again, which the region stage ignores."""
        clock: PartitionClock | None = self.table.get(_clock_key(partition))
        if clock is None or not clock["dirty"]:
            self._idle_sent.pop(partition, None)
            return []
        if now_ms - clock["heartbeat_at_ms"] < self.settings.heartbeat_ms:
            return []
        sent = self._idle_sent.get(partition, {})
        current: dict[str, int] = {}
        partials = []
        for key in clock["dirty"]:
            aggregate: WindowAggregate | None = self.table.get(key)
            if aggregate is None:
                continue
            current[key] = aggregate["revision"]
            if sent.get(key) != aggregate["revision"]:
                partials.append(_partial(partition, aggregate))
        self._idle_sent[partition] = current
        return partials

    def on_event(
        self, partition: int, offset: int, event: DetectionEvent, now_ms: int
    ) -> CameraOutputs:
        """Count one event read at ``offset`` of ``partition`` of the
        detections topic."""
        settings = self.settings
        out = CameraOutputs()
        clock: PartitionClock | None = self._resume(partition, out)
        if clock is not None and offset <= clock["applied_offset"]:
            # Read again after a restart: counted already, but what it sent
            # may have been lost with the worker, the watermark included.
            out.outcome = "replayed"
            out.watermark = _watermark(partition, clock)
            return out
        store = Changes(self.table)
        captured_at_ms = event["captured_at_ms"]
        if captured_at_ms > now_ms + settings.future_tolerance_ms:
            out.outcome = "future"
            return out
        scopes = event_scopes(event)
        slice_start_ms = align_ms(captured_at_ms, settings.hop_ms)
        camera_slice_key = _slice_key(partition, scopes[0], slice_start_ms)
        camera_slice: dict[str, Any] | None = self.table.get(camera_slice_key)
        if camera_slice is not None and event["event_id"] in camera_slice["event_ids"]:
            out.outcome = "duplicate"
            return out
        clock = self._clock(store, partition, captured_at_ms)
        window_start_ms = align_ms(captured_at_ms, settings.size_ms)
        closes_at_ms = (
            slice_start_ms + settings.hop_ms
            if settings.rolling
            else window_start_ms + settings.size_ms
        ) + settings.grace_ms
        if closes_at_ms <= clock["watermark_ms"]:
            # Nothing is written: the worker acknowledges the event once it
            # is on the late-events topic, so a crash before then routes it
            # again rather than losing it.
            out.outcome = "late"
            return out
        clock["applied_offset"] = offset
        self._count(store, partition, event, clock=clock, now_ms=now_ms, out=out)
        store[_clock_key(partition)] = clock
        store.commit(_journal_key(partition), offset)
        return out

    def next_offset(self, partition: int) -> int | None:
        """The offset this partition must go on from: one past the last message
        applied, acknowledged or skipped; None before the first."""
        # Only the clock is needed: what the outbox holds is sent again when
        # the message itself is handled.
        clock = recovered_clock(
            self.table, _clock_key(partition), _journal_key(partition)
        )
        return None if clock is None else int(clock["applied_offset"]) + 1

    def acknowledge(self, partition: int, offset: int) -> None:
        """A message that counted nothing (a duplicate, a late or bad event) is
        dealt with: a replay skips it."""
        clock: PartitionClock | None = plain_copy(self.table.get(_clock_key(partition)))
        if clock is None:
            clock = _new_clock()
        if offset > clock["applied_offset"]:
            clock["applied_offset"] = offset
            self.table[_clock_key(partition)] = clock

    def delivered(self, partition: int, outbox: list[str]) -> None:
        """Kafka acknowledged the outbox entries: forget them."""
        forget_outbox(self.table, _clock_key(partition), outbox)

    def _resume(self, partition: int, out: CameraOutputs) -> PartitionClock | None:
        """Finish what a killed worker left half-applied, send again what its
        outbox still holds; returns the partition's clock."""
        clock: PartitionClock | None = recovered_clock(
            self.table, _clock_key(partition), _journal_key(partition)
        )
        if clock is None:
            return None
        if clock["outbox"]:
            for key in clock["outbox"]:
                entry: OutboxEntry | None = self.table.get(key)
                if entry is not None:
                    out.windows.extend(plain_copy(entry["windows"]))
                    out.partials.extend(
                        (name, partial)
                        for name, partial in plain_copy(entry["partials"])
                    )
            out.outbox.extend(clock["outbox"])
            out.watermark = _watermark(partition, clock)
        return clock

    def _count(
        self,
        store: Store,
        partition: int,
        event: DetectionEvent,
        *,
        clock: PartitionClock,
        now_ms: int,
        out: CameraOutputs,
    ) -> None:
        settings = self.settings
        captured_at_ms = event["captured_at_ms"]
        scopes = event_scopes(event)
        slice_start_ms = align_ms(captured_at_ms, settings.hop_ms)
        window_start_ms = align_ms(captured_at_ms, settings.size_ms)
        for scope in scopes if settings.rolling else scopes[:1]:
            self._count_slice(store, partition, scope, slice_start_ms, event)
        for scope in scopes:
            self._count_tumbling(
                store, partition, scope, window_start_ms, event, clock=clock, out=out
            )

        previous_ms = clock["watermark_ms"]
        clock["watermark_ms"] = max(previous_ms, captured_at_ms)
        hop_ms = settings.hop_ms
        closed_until_ms = clock["closed_until_ms"]
        assert closed_until_ms is not None, "set by _clock"
        if (
            clock["watermark_ms"] // hop_ms > previous_ms // hop_ms
            or closed_until_ms + hop_ms + settings.grace_ms <= clock["watermark_ms"]
            or now_ms - clock["heartbeat_at_ms"] >= settings.heartbeat_ms
        ):
            self._advance(
                store,
                partition,
                clock=clock,
                previous_ms=previous_ms,
                now_ms=now_ms,
                out=out,
            )

    def _clock(
        self, store: Store, partition: int, captured_at_ms: int
    ) -> PartitionClock:
        clock: PartitionClock = store.get(_clock_key(partition)) or _new_clock()
        if clock["closed_until_ms"] is None:
            # Nothing before this event's window exists yet, so closing may
            # start right there.
            start_ms = align_ms(captured_at_ms, self.settings.hop_ms)
            clock["closed_until_ms"] = start_ms - self.settings.size_ms
        return clock

    def _count_slice(
        self,
        store: Store,
        partition: int,
        scope: Scope,
        start_ms: int,
        event: DetectionEvent,
    ) -> None:
        key = _slice_key(partition, scope, start_ms)
        state: dict[str, Any] | None = store.get(key)
        if state is None:
            end_ms = start_ms + self.settings.hop_ms
            state = {"aggregate": empty_aggregate(scope, "ROLLING", start_ms, end_ms)}
            if scope.level == "CAMERA":
                state["event_ids"] = []
            _append(store, _slices_of_key(partition, start_ms), scope.name)
        if scope.level == "CAMERA":
            state["event_ids"].append(event["event_id"])
        add_event(state["aggregate"], event)
        store[key] = state

    def _count_tumbling(
        self,
        store: Store,
        partition: int,
        scope: Scope,
        start_ms: int,
        event: DetectionEvent,
        *,
        clock: PartitionClock,
        out: CameraOutputs,
    ) -> None:
        key = _tumbling_key(partition, scope, start_ms)
        aggregate: WindowAggregate | None = store.get(key)
        if aggregate is None:
            end_ms = start_ms + self.settings.size_ms
            aggregate = empty_aggregate(scope, "TUMBLING", start_ms, end_ms)
            _append(store, _tumbling_of_key(partition, start_ms), scope.name)
        add_event(aggregate, event)
        aggregate["revision"] += 1
        aggregate["updated_at_ms"] = event["processed_at_ms"]
        store[key] = aggregate
        if scope.level == "CAMERA":
            out.windows.append(plain_copy(aggregate))
        elif key not in clock["dirty"]:
            clock["dirty"].append(key)

    def _advance(
        self,
        store: Store,
        partition: int,
        *,
        clock: PartitionClock,
        previous_ms: int,
        now_ms: int,
        out: CameraOutputs,
    ) -> None:
        """Forward changed partials, close what the watermark passed, and send
        the watermark on."""
        settings = self.settings
        for key in clock["dirty"]:
            aggregate: WindowAggregate | None = store.get(key)
            if aggregate is not None:
                out.partials.append(_partial(partition, aggregate))
        clock["dirty"] = []
        # Slices end on hop boundaries; everything that could exist ends by
        # the previous watermark plus one window, so a jump in event time
        # skips the empty stretch instead of walking it.
        last_end_ms = clock["watermark_ms"] - settings.grace_ms
        closed_until_ms = clock["closed_until_ms"]
        assert closed_until_ms is not None, "set by _clock"
        end_ms = closed_until_ms + settings.hop_ms
        horizon_ms = align_ms(previous_ms, settings.hop_ms) + 2 * settings.size_ms
        finals: OutboxEntry = {"windows": [], "partials": []}
        while end_ms <= last_end_ms and end_ms <= horizon_ms:
            self._close(store, partition, end_ms, finals)
            end_ms += settings.hop_ms
        clock["closed_until_ms"] = max(
            closed_until_ms, align_ms(last_end_ms, settings.hop_ms)
        )
        clock["heartbeat_at_ms"] = now_ms
        if finals["windows"] or finals["partials"]:
            outbox_key = _outbox_key(partition, clock["applied_offset"])
            store[outbox_key] = finals
            clock["outbox"].append(outbox_key)
            out.outbox.append(outbox_key)
            out.windows.extend(plain_copy(finals["windows"]))
            out.partials.extend(plain_copy(finals["partials"]))
        out.watermark = _watermark(partition, clock)

    def _close(
        self, store: Store, partition: int, end_ms: int, finals: OutboxEntry
    ) -> None:
        """Everything that ends at ``end_ms``: tumbling windows (when aligned),
        the rolling windows ending there, and the slices no window needs any
        more."""
        settings = self.settings
        if end_ms % settings.size_ms == 0:
            self._close_tumbling(store, partition, end_ms - settings.size_ms, finals)
        first_slice_ms = end_ms - settings.size_ms
        if settings.rolling:
            self._emit_rolling(store, partition, first_slice_ms, end_ms, finals)
        slices_key = _slices_of_key(partition, first_slice_ms)
        scope_names: list[str] = store.get(slices_key) or []
        for scope_name in scope_names:
            _discard(store, f"P{partition}|slice|{scope_name}|{first_slice_ms}")
        _discard(store, slices_key)

    def _close_tumbling(
        self, store: Store, partition: int, start_ms: int, finals: OutboxEntry
    ) -> None:
        index_key = _tumbling_of_key(partition, start_ms)
        for scope_name in store.get(index_key) or []:
            key = f"P{partition}|win|{window_key(scope_name, 'TUMBLING', start_ms)}"
            aggregate: WindowAggregate | None = store.get(key)
            if aggregate is None:
                continue
            aggregate["is_final"] = True
            aggregate["revision"] += 1
            aggregate["updated_at_ms"] = max(
                aggregate["updated_at_ms"], aggregate["last_captured_at_ms"]
            )
            if aggregate["scope_level"] == "CAMERA":
                finals["windows"].append(aggregate)
            else:
                finals["partials"].append(_partial(partition, aggregate))
            del store[key]
        _discard(store, index_key)

    def _emit_rolling(
        self,
        store: Store,
        partition: int,
        start_ms: int,
        end_ms: int,
        finals: OutboxEntry,
    ) -> None:
        hop_ms = self.settings.hop_ms
        totals: dict[str, WindowAggregate] = {}
        for slice_ms in range(start_ms, end_ms, hop_ms):
            for scope_name in store.get(_slices_of_key(partition, slice_ms)) or []:
                state = store.get(f"P{partition}|slice|{scope_name}|{slice_ms}")
                if state is None:
                    continue
                part: WindowAggregate = state["aggregate"]
                total = totals.get(scope_name)
                if total is None:
                    total = empty_aggregate(
                        Scope(part["scope_level"], part["scope_id"], part["region"]),
                        "ROLLING",
                        start_ms,
                        end_ms,
                    )
                    totals[scope_name] = total
                add_aggregate(total, part)
        for total in totals.values():
            total["revision"] = 1
            total["is_final"] = True
            total["updated_at_ms"] = total["last_captured_at_ms"]
            if total["scope_level"] == "CAMERA":
                finals["windows"].append(total)
            else:
                finals["partials"].append(_partial(partition, total))


def _partial(partition: int, aggregate: WindowAggregate) -> tuple[str, PartialMessage]:
    key = window_key(
        f"{aggregate['scope_level']}:{aggregate['scope_id']}",
        aggregate["window_kind"],
        aggregate["window_start_ms"],
    )
    return key, {
        "type": "partial",
        "source": partition,
        "aggregate": plain_copy(aggregate),
    }


def _new_clock() -> PartitionClock:
    return {
        "applied_offset": -1,
        "watermark_ms": 0,
        "closed_until_ms": None,
        "heartbeat_at_ms": 0,
        "dirty": [],
        "outbox": [],
    }


def _watermark(partition: int, clock: PartitionClock) -> WatermarkMessage:
    return {
        "type": "watermark",
        "source": partition,
        "watermark_ms": clock["watermark_ms"],
    }


def _clock_key(partition: int) -> str:
    return f"P{partition}|clock"


def _journal_key(partition: int) -> str:
    return f"P{partition}|journal"


def _outbox_key(partition: int, offset: int) -> str:
    return f"P{partition}|outbox|{offset}"


def _slice_key(partition: int, scope: Scope, start_ms: int) -> str:
    return f"P{partition}|slice|{scope.name}|{start_ms}"


def _slices_of_key(partition: int, start_ms: int) -> str:
    """The scopes that have a slice starting at ``start_ms``."""
    return f"P{partition}|slices|{start_ms}"


def _tumbling_key(partition: int, scope: Scope, start_ms: int) -> str:
    return f"P{partition}|win|{window_key(scope.name, 'TUMBLING', start_ms)}"


def _tumbling_of_key(partition: int, start_ms: int) -> str:
    """The scopes that have a tumbling window starting at ``start_ms``."""
    return f"P{partition}|windows|{start_ms}"


def _append(store: Store, key: str, item: str) -> None:
    items: list[str] = list(store.get(key) or [])
    if item not in items:
        items.append(item)
        store[key] = items


def _discard(store: Store, key: str) -> None:
    if store.get(key) is not None:
        del store[key]
