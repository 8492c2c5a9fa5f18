"""Alert rules: hold time, hysteresis, cooldown, thin windows, replays, and
the rule configuration's checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pantau.config import PantauConfig
from pantau.config_alerting import AlertRule
from schemas.records import Alert, CameraState, CameraStatus, WindowAggregate
from stream_apps.alert_rules import RuleSet
from stream_apps.alert_state import AlertBook

MIN_MS = 60_000


def rule(**fields: Any) -> AlertRule:
    base: dict[str, Any] = {
        "id": "low-masks",
        "metric": "compliance_ratio",
        "scope": "KELURAHAN",
        "comparison": "<",
        "threshold": 0.6,
        "for_s": 120,
        "hysteresis": 0.05,
        "cooldown_s": 600,
        "min_frames": 5,
    }
    base.update(fields)
    return AlertRule.model_validate(base)


def window(
    at_ms: int, masked: int, unmasked: int, frames: int = 20, scope: str = "J/G/K"
) -> WindowAggregate:
    return {
        "scope_level": "KELURAHAN",
        "scope_id": scope,
        "region": {"city": "J", "kecamatan": "G", "kelurahan": "K"},
        "window_kind": "TUMBLING",
        "window_start_ms": at_ms - at_ms % (15 * MIN_MS),
        "window_end_ms": at_ms - at_ms % (15 * MIN_MS) + 15 * MIN_MS,
        "revision": 1,
        "is_final": False,
        "updated_at_ms": at_ms,
        "frames": frames,
        "people_sum": 3 * frames,
        "people_max": 5,
        "vehicles_sum": {"car": frames},
        "faces_sum": masked + unmasked,
        "masked_sum": masked,
        "unmasked_sum": unmasked,
        "violators_sum": frames,
        "uncalibrated_frames": 0,
        "first_captured_at_ms": at_ms - 1000,
        "last_captured_at_ms": at_ms,
    }


def states(alerts: list[Alert]) -> list[tuple[str, int]]:
    return [(a["state"], a["resolved_at_ms"] or a["fired_at_ms"]) for a in alerts]


def feed(rules: RuleSet, samples: list[tuple[int, float]]) -> list[Alert]:
    """Compliance samples (minute, ratio) as windows of 100 judged faces."""
    out = []
    for minute, ratio in samples:
        masked = round(ratio * 100)
        out += rules.on_window(window(minute * MIN_MS, masked, 100 - masked))
    return out


def test_fires_after_holding_and_resolves_past_the_hysteresis() -> None:
    rules = RuleSet([rule()], AlertBook())
    alerts = feed(
        rules,
        [(0, 0.7), (1, 0.5), (2, 0.5), (3, 0.55), (4, 0.62), (5, 0.64), (6, 0.66)],
    )
    # Below 0.6 from minute 1; held 2 minutes at minute 3; 0.62 and 0.64 are
    # inside the hysteresis, 0.66 is past it.
    assert states(alerts) == [("FIRING", 3 * MIN_MS), ("RESOLVED", 6 * MIN_MS)]
    firing, resolved = alerts
    assert firing["alert_id"] == resolved["alert_id"]
    assert firing["value"] == pytest.approx(0.55)
    assert resolved["fired_at_ms"] == 3 * MIN_MS
    assert "compliance_ratio 0.55 < 0.6 at kelurahan J/G/K" in firing["message"]


def test_a_break_in_the_condition_restarts_the_hold() -> None:
    rules = RuleSet([rule()], AlertBook())
    alerts = feed(rules, [(0, 0.5), (1, 0.5), (2, 0.7), (3, 0.5), (4, 0.5)])
    assert alerts == []
    assert states(feed(rules, [(5, 0.5)])) == [("FIRING", 5 * MIN_MS)]


def test_cooldown_delays_a_second_firing() -> None:
    rules = RuleSet([rule(for_s=0, cooldown_s=600)], AlertBook())
    alerts = feed(rules, [(0, 0.5), (1, 0.7), (2, 0.5), (10, 0.5), (11, 0.5)])
    # Resolved at minute 1: no firing again before minute 11.
    assert states(alerts) == [
        ("FIRING", 0),
        ("RESOLVED", MIN_MS),
        ("FIRING", 11 * MIN_MS),
    ]
    assert alerts[0]["alert_id"] != alerts[2]["alert_id"]


def test_thin_windows_and_faceless_windows_give_no_sample() -> None:
    rules = RuleSet([rule(for_s=0)], AlertBook())
    assert rules.on_window(window(0, 0, 10, frames=4)) == []  # below min_frames
    assert rules.on_window(window(MIN_MS, 0, 0)) == []  # no faces judged
    assert len(rules.on_window(window(2 * MIN_MS, 0, 10))) == 1


def test_replayed_and_out_of_order_samples_change_nothing() -> None:
    book = AlertBook()
    rules = RuleSet([rule()], book)
    first = feed(rules, [(0, 0.5), (1, 0.5), (2, 0.5), (3, 0.5)])
    assert states(first) == [("FIRING", 2 * MIN_MS)]
    # The same input again, as after a restart that re-reads it.
    assert feed(rules, [(0, 0.5), (1, 0.5), (2, 0.5), (3, 0.5)]) == []
    # A restarted evaluator restores the book from the alerts topic.
    restored = AlertBook()
    restored.restore(first[0])
    again = RuleSet([rule()], restored)
    assert feed(again, [(1, 0.5), (2, 0.5), (3, 0.5), (4, 0.7)]) != []
    assert restored.firing() == []


def test_scope_filters() -> None:
    rules = RuleSet([rule(for_s=0, scope_ids=["J/G/K"])], AlertBook())
    assert rules.on_window(window(0, 0, 10, scope="J/G/other")) == []
    assert len(rules.on_window(window(0, 0, 10))) == 1
    camera_rules = RuleSet([rule(for_s=0, scope="CAMERA")], AlertBook())
    assert camera_rules.on_window(window(0, 0, 10)) == []


@pytest.mark.parametrize(
    ("metric", "comparison", "threshold"),
    [
        ("people_density", ">", 2.5),  # 3 people per frame
        ("vehicles", ">=", 1.0),  # 1 car per frame
        ("distancing_violation_ratio", ">", 0.3),  # 1 of 3 people
    ],
)
def test_window_metrics(metric: str, comparison: str, threshold: float) -> None:
    rules = RuleSet(
        [rule(metric=metric, comparison=comparison, threshold=threshold, for_s=0)],
        AlertBook(),
    )
    [alert] = rules.on_window(window(0, 10, 10))
    assert alert["metric"] == metric


def status(state: CameraState, at_ms: int) -> CameraStatus:
    return {
        "camera_id": "cam-1",
        "state": state,
        "changed_at_ms": at_ms,
        "reason": None,
        "last_frame_at_ms": None,
    }


def test_camera_offline_fires_by_the_clock_and_resolves_when_back() -> None:
    offline = rule(id="offline", metric="camera_offline", scope="CAMERA", for_s=300)
    rules = RuleSet([offline], AlertBook())
    assert rules.on_status(status("ONLINE", 0)) == []
    assert rules.on_status(status("RECONNECTING", MIN_MS)) == []
    assert rules.on_status(status("OFFLINE", 2 * MIN_MS)) == []
    assert rules.tick(6 * MIN_MS) == []
    [fired] = rules.tick(7 * MIN_MS)
    assert (fired["state"], fired["fired_at_ms"]) == ("FIRING", 7 * MIN_MS)
    assert rules.tick(8 * MIN_MS) == []
    [resolved] = rules.on_status(status("ONLINE", 9 * MIN_MS))
    assert resolved["state"] == "RESOLVED"


def test_configuration_names_rule_problems() -> None:
    with pytest.raises(ValidationError, match="camera_offline needs scope CAMERA"):
        rule(metric="camera_offline", scope="KECAMATAN")
    base = {"id": "r", "metric": "vehicles", "scope": "CITY"}
    hook = {"name": "city", "url": "https://example.org/hook", "secret": "s" * 16}
    with pytest.raises(ValidationError, match="rule id 'r' is used twice"):
        PantauConfig.model_validate({"alerting": {"rules": [base, base]}})
    with pytest.raises(ValidationError, match=r"names unknown rules \['nope'\]"):
        PantauConfig.model_validate(
            {"alerting": {"rules": [base], "webhooks": [{**hook, "rules": ["nope"]}]}}
        )
    with pytest.raises(ValidationError, match="at least 16 characters, got 5"):
        PantauConfig.model_validate(
            {"alerting": {"webhooks": [{**hook, "secret": "short"}]}}
        )
    with pytest.raises(ValidationError, match="expected an http"):
        PantauConfig.model_validate(
            {"alerting": {"webhooks": [{**hook, "url": "ftp://x"}]}}
        )
    config = PantauConfig.model_validate(
        {"alerting": {"rules": [base], "webhooks": [hook]}}
    )
    assert "s" * 16 not in repr(config)
