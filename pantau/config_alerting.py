"""Configuration of alert rules and of the webhook subscribers told about
alerts."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from pantau.config_base import Section, url_scheme

AlertMetric = Literal[
    "compliance_ratio",
    "people_density",
    "vehicles",
    "distancing_violation_ratio",
    "camera_offline",
]
_RULE_ID = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class AlertRule(Section):
    """When to raise an alert, for which scopes, and when to resolve it."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    id: str = Field(
        pattern=_RULE_ID,
        description="Stable rule id: lower-case letters, digits, '_' and '-'.",
    )
    description: str | None = Field(
        default=None, max_length=200, description="Said in every alert message."
    )
    metric: AlertMetric = Field(
        description="compliance_ratio (masked / faces judged), people_density "
        "(people per frame), vehicles (vehicles per frame), "
        "distancing_violation_ratio (violators / people), or camera_offline "
        "(a camera OFFLINE or FROZEN; camera scope only)."
    )
    scope: Literal["CAMERA", "KELURAHAN", "KECAMATAN", "CITY"] = Field(
        description="Which windows the rule watches: each camera's, or each "
        "region's at one level."
    )
    scope_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only these camera ids or region paths "
        "(city/kecamatan/kelurahan); unset means every scope at the level.",
    )
    comparison: Literal["<", "<=", ">", ">="] = Field(
        default=">", description="The alert condition is `metric comparison threshold`."
    )
    threshold: float = Field(
        default=0.0, allow_inf_nan=False, description="The value compared with."
    )
    for_s: float = Field(
        default=0,
        ge=0,
        le=7 * 86_400,
        description="How long the condition must hold before the alert fires, "
        "in the samples' own time (capture time for windows).",
    )
    hysteresis: float = Field(
        default=0.0,
        ge=0,
        allow_inf_nan=False,
        description="The alert resolves only when the value is back past the "
        "threshold by this much.",
    )
    cooldown_s: float = Field(
        default=0,
        ge=0,
        le=7 * 86_400,
        description="After an alert resolves, the same rule and scope cannot "
        "fire again for this long.",
    )
    window_kind: Literal["TUMBLING", "ROLLING"] = Field(
        default="TUMBLING",
        description="Which windows give the samples: the running 15-minute "
        "tumbling windows (updated as frames arrive) or the rolling ones "
        "(published when final).",
    )
    min_frames: int = Field(
        default=10,
        ge=1,
        le=1_000_000,
        description="A window with fewer frames gives no sample.",
    )

    @model_validator(mode="after")
    def _offline_is_per_camera(self) -> AlertRule:
        if self.metric == "camera_offline" and self.scope != "CAMERA":
            raise ValueError(
                f"rule {self.id!r}: camera_offline needs scope CAMERA, got {self.scope}"
            )
        return self

    @property
    def label(self) -> str:
        """How alert messages name the rule."""
        return self.description or self.id


class WebhookSubscriber(Section):
    """A city platform told about every alert by signed HTTP POSTs."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    _url_fields: ClassVar[frozenset[str]] = frozenset({"url"})

    name: str = Field(
        pattern=_RULE_ID,
        description="Stable subscriber name; its consumer group is "
        "pantau-webhook-<name>.",
    )
    url: str = Field(min_length=1, description="http:// or https:// endpoint.")
    secret: SecretStr = Field(
        description="Shared key of the HMAC-SHA256 signature; at least 16 characters."
    )
    rules: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Only alerts of these rule ids; unset means every rule.",
    )
    timeout_s: float = Field(
        default=5, gt=0, le=120, description="Per-attempt HTTP timeout."
    )
    max_attempts: int = Field(
        default=6,
        ge=1,
        le=100,
        description="Attempts per alert message before it goes to the "
        "dead-letter topic.",
    )
    backoff_initial_s: float = Field(
        default=0.5, gt=0, le=600, description="Wait after the first failure."
    )
    backoff_max_s: float = Field(
        default=30, gt=0, le=3600, description="Longest wait between attempts."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if url_scheme(value) not in {"http", "https"}:
            raise ValueError("expected an http:// or https:// URL")
        return value

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        length = len(value.get_secret_value())
        if length < 16:
            raise ValueError(f"expected at least 16 characters, got {length}")
        return value


class AlertingConfig(Section):
    """Alert rules over the window results and camera health, and who is told."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    rules: list[AlertRule] = Field(
        default_factory=list, max_length=1000, description="Alert rules."
    )
    webhooks: list[WebhookSubscriber] = Field(
        default_factory=list, max_length=100, description="Webhook subscribers."
    )
    source: str = Field(
        default="pantau",
        min_length=1,
        max_length=200,
        description="The CloudEvents `source` of every webhook: name the "
        "deployment, for example 'pantau/jakarta'.",
    )
    tick_s: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often rules that hold without new samples (a camera "
        "that stays offline) are judged again.",
    )

    @model_validator(mode="after")
    def _names_are_unique_and_known(self) -> AlertingConfig:
        for what, names in (
            ("rule id", [rule.id for rule in self.rules]),
            ("webhook name", [hook.name for hook in self.webhooks]),
        ):
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    raise ValueError(
                        f"{what} {name!r} is used twice; expected each to be unique"
                    )
                seen.add(name)
        known = {rule.id for rule in self.rules}
        for hook in self.webhooks:
            unknown = sorted(set(hook.rules or ()) - known)
            if unknown:
                raise ValueError(
                    f"webhook {hook.name!r} names unknown rules {unknown}; "
                    f"expected rule ids from alerting.rules "
                    f"({', '.join(sorted(known)) or 'none defined'})"
                )
        return self
