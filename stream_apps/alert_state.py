"""The life of one alert key (rule, scope level, scope id): idle, pending while
the condition holds but not yet for long enough, firing, then resolved.

Pure logic, no Kafka: ``AlertBook.observe`` takes a sample of a rule's metric
and returns the lifecycle message to publish, if any. Time is the samples' own
time (capture time for windows, change time for camera states), so a replay
gives the same alerts as the first run. The book is rebuilt after a restart
from the compacted alerts topic (``restore``); samples at or before a key's
last change are then ignored, so a replayed input never fires twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from schemas.records import Alert, ScopeLevel

Comparison = Literal["<", "<=", ">", ">="]
Phase = Literal["idle", "pending", "firing"]


def compare(value: float, comparison: Comparison, threshold: float) -> bool:
    """Whether ``value comparison threshold`` holds."""
    if comparison == "<":
        return value < threshold
    if comparison == "<=":
        return value <= threshold
    if comparison == ">":
        return value > threshold
    return value >= threshold


@dataclass(frozen=True)
class Condition:
    """When a rule fires and when it resolves."""

    rule_id: str
    metric: str
    comparison: Comparison
    threshold: float
    hold_ms: int
    hysteresis: float
    cooldown_ms: int
    label: str

    def breached(self, value: float) -> bool:
        return compare(value, self.comparison, self.threshold)

    def cleared(self, value: float) -> bool:
        """The value is back past the threshold by at least the hysteresis."""
        relaxed = (
            self.threshold + self.hysteresis
            if self.comparison in ("<", "<=")
            else self.threshold - self.hysteresis
        )
        return not compare(value, self.comparison, relaxed)


@dataclass(frozen=True)
class AlertKey:
    """What one alert is about; the key of its messages on the alerts topic."""

    rule_id: str
    scope_level: ScopeLevel
    scope_id: str

    @property
    def text(self) -> str:
        return f"{self.rule_id}:{self.scope_level}:{self.scope_id}"


@dataclass
class KeyState:
    """Where one key stands."""

    phase: Phase = "idle"
    pending_since_ms: int | None = None
    alert_id: str | None = None
    fired_at_ms: int | None = None
    resolved_at_ms: int | None = None
    last_change_ms: int = -1
    last_sample_ms: int = -1
    last_value: float | None = None


def alert_id(key: AlertKey, fired_at_ms: int) -> str:
    """A firing's id, the same whenever the same samples fire it."""
    text = f"{key.text}|{fired_at_ms}".encode()
    return hashlib.sha256(text).hexdigest()[:24]


class AlertBook:
    """Every key's state, and the transitions the samples cause."""

    def __init__(self) -> None:
        self.states: dict[AlertKey, KeyState] = {}

    def restore(self, alert: Alert) -> None:
        """Take the latest lifecycle message of a key from the alerts topic."""
        key = AlertKey(alert["rule_id"], alert["scope_level"], alert["scope_id"])
        state = KeyState()
        if alert["state"] == "FIRING":
            state.phase = "firing"
            state.alert_id = alert["alert_id"]
            state.fired_at_ms = alert["fired_at_ms"]
            state.last_change_ms = alert["fired_at_ms"]
        else:
            resolved_at = alert["resolved_at_ms"] or alert["fired_at_ms"]
            state.resolved_at_ms = resolved_at
            state.last_change_ms = resolved_at
        state.last_sample_ms = state.last_change_ms
        self.states[key] = state

    def firing(self) -> list[AlertKey]:
        """The keys whose alert is firing now."""
        return [key for key, state in self.states.items() if state.phase == "firing"]

    def observe(
        self, condition: Condition, key: AlertKey, value: float, at_ms: int
    ) -> Alert | None:
        """Take a sample; returns the FIRING or RESOLVED message it causes."""
        state = self.states.setdefault(key, KeyState())
        if at_ms <= state.last_change_ms or at_ms < state.last_sample_ms:
            return None  # replayed or out of order: already taken into account
        state.last_sample_ms = at_ms
        state.last_value = value
        if state.phase == "firing":
            if condition.cleared(value):
                return self._resolve(condition, key, state, value, at_ms)
            return None
        if not condition.breached(value):
            state.phase, state.pending_since_ms = "idle", None
            return None
        if state.phase == "idle":
            state.phase, state.pending_since_ms = "pending", at_ms
        return self._fire_if_due(condition, key, state, value, at_ms)

    def tick(self, condition: Condition, key: AlertKey, now_ms: int) -> Alert | None:
        """Re-judge a pending key at ``now_ms`` with its last value: for states
        that stay true without new samples (a camera that stays offline)."""
        state = self.states.get(key)
        if state is None or state.phase != "pending" or state.last_value is None:
            return None
        if now_ms <= state.last_sample_ms:
            return None
        return self._fire_if_due(condition, key, state, state.last_value, now_ms)

    def _fire_if_due(
        self,
        condition: Condition,
        key: AlertKey,
        state: KeyState,
        value: float,
        at_ms: int,
    ) -> Alert | None:
        assert state.pending_since_ms is not None
        if at_ms - state.pending_since_ms < condition.hold_ms:
            return None
        if (
            state.resolved_at_ms is not None
            and at_ms - state.resolved_at_ms < condition.cooldown_ms
        ):
            return None
        state.phase = "firing"
        state.fired_at_ms = at_ms
        state.alert_id = alert_id(key, at_ms)
        state.last_change_ms = at_ms
        state.last_sample_ms = max(state.last_sample_ms, at_ms)
        return {
            "alert_id": state.alert_id,
            "rule_id": key.rule_id,
            "scope_level": key.scope_level,
            "scope_id": key.scope_id,
            "state": "FIRING",
            "metric": condition.metric,
            "value": value,
            "threshold": condition.threshold,
            "fired_at_ms": at_ms,
            "resolved_at_ms": None,
            "message": (
                f"{condition.label}: {condition.metric} {value:.3g} "
                f"{condition.comparison} {condition.threshold:g} at "
                f"{key.scope_level.lower()} {key.scope_id}"
            ),
        }

    def _resolve(
        self,
        condition: Condition,
        key: AlertKey,
        state: KeyState,
        value: float,
        at_ms: int,
    ) -> Alert:
        assert state.alert_id is not None and state.fired_at_ms is not None
        alert: Alert = {
            "alert_id": state.alert_id,
            "rule_id": key.rule_id,
            "scope_level": key.scope_level,
            "scope_id": key.scope_id,
            "state": "RESOLVED",
            "metric": condition.metric,
            "value": value,
            "threshold": condition.threshold,
            "fired_at_ms": state.fired_at_ms,
            "resolved_at_ms": at_ms,
            "message": (
                f"{condition.label}: resolved, {condition.metric} back to "
                f"{value:.3g} at {key.scope_level.lower()} {key.scope_id}"
            ),
        }
        state.phase = "idle"
        state.pending_since_ms = None
        state.alert_id = None
        state.resolved_at_ms = at_ms
        state.last_change_ms = at_ms
        return alert
