"""The configured alert rules applied to window aggregates and camera states."""

from __future__ import annotations

from pantau.config_alerting import AlertRule
from schemas.records import Alert, CameraStatus, WindowAggregate
from stream_apps.alert_metrics import offline_value, window_value
from stream_apps.alert_state import AlertBook, AlertKey, Condition


def condition_of(rule: AlertRule) -> Condition:
    """The firing and resolving condition of a rule; camera_offline fires on
    1 (offline) and resolves on 0."""
    offline = rule.metric == "camera_offline"
    return Condition(
        rule_id=rule.id,
        metric=rule.metric,
        comparison=">=" if offline else rule.comparison,
        threshold=1.0 if offline else rule.threshold,
        hold_ms=round(rule.for_s * 1000),
        hysteresis=0.0 if offline else rule.hysteresis,
        cooldown_ms=round(rule.cooldown_s * 1000),
        label=rule.label,
    )


class RuleSet:
    """Every rule, judged against one shared book of alert states."""

    def __init__(self, rules: list[AlertRule], book: AlertBook) -> None:
        self.book = book
        self._rules = [(rule, condition_of(rule)) for rule in rules]
        self._scopes = {
            rule.id: frozenset(rule.scope_ids) if rule.scope_ids else None
            for rule in rules
        }

    def _applies(self, rule: AlertRule, scope_level: str, scope_id: str) -> bool:
        if rule.scope != scope_level:
            return False
        only = self._scopes[rule.id]
        return only is None or scope_id in only

    def on_window(self, window: WindowAggregate) -> list[Alert]:
        """The lifecycle messages one window update causes."""
        alerts = []
        for rule, condition in self._rules:
            if (
                rule.metric == "camera_offline"
                or rule.window_kind != (window["window_kind"])
            ):
                continue
            if not self._applies(rule, window["scope_level"], window["scope_id"]):
                continue
            value = window_value(rule.metric, window, rule.min_frames)
            if value is None:
                continue
            key = AlertKey(rule.id, window["scope_level"], window["scope_id"])
            alert = self.book.observe(
                condition, key, value, window["last_captured_at_ms"]
            )
            if alert is not None:
                alerts.append(alert)
        return alerts

    def on_status(self, status: CameraStatus) -> list[Alert]:
        """The lifecycle messages one camera state change causes."""
        alerts = []
        for rule, condition in self._rules:
            if rule.metric != "camera_offline":
                continue
            if not self._applies(rule, "CAMERA", status["camera_id"]):
                continue
            key = AlertKey(rule.id, "CAMERA", status["camera_id"])
            alert = self.book.observe(
                condition, key, offline_value(status), status["changed_at_ms"]
            )
            if alert is not None:
                alerts.append(alert)
        return alerts

    def tick(self, now_ms: int) -> list[Alert]:
        """Fire camera_offline alerts whose cameras stayed offline long enough
        without a new state change."""
        alerts = []
        for rule, condition in self._rules:
            if rule.metric != "camera_offline":
                continue
            for key in [k for k in self.book.states if k.rule_id == rule.id]:
                alert = self.book.tick(condition, key, now_ms)
                if alert is not None:
                    alerts.append(alert)
        return alerts
