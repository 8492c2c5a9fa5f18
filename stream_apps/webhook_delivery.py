"""Alerts as signed CloudEvents over HTTP: the body, the signature, one POST.

Each alert lifecycle message becomes a CloudEvents 1.0 event in structured
mode (``Content-Type: application/cloudevents+json``). The request carries

- ``X-Pantau-Timestamp``: Unix seconds when it was signed, and
- ``X-Pantau-Signature``: ``sha256=`` and the hex HMAC-SHA256, under the
  subscriber's secret, of the timestamp, a ``.``, and the body bytes.

A receiver recomputes the HMAC over what it received, compares in constant
time, and refuses timestamps too far from its clock (``verify``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.records import Alert

CONTENT_TYPE = "application/cloudevents+json"
TIMESTAMP_HEADER = "X-Pantau-Timestamp"
SIGNATURE_HEADER = "X-Pantau-Signature"
EVENT_TYPES = {
    "FIRING": "id.pantau.alert.firing",
    "RESOLVED": "id.pantau.alert.resolved",
}


def cloud_event(alert: Alert, source: str) -> bytes:
    """The alert as a CloudEvents JSON body; its id is the same every time the
    same lifecycle message is sent, so receivers can drop repeats."""
    changed_ms = alert["resolved_at_ms"] or alert["fired_at_ms"]
    event = {
        "specversion": "1.0",
        "id": f"{alert['alert_id']}-{alert['state'].lower()}",
        "source": source,
        "type": EVENT_TYPES[alert["state"]],
        "subject": f"{alert['rule_id']}:{alert['scope_level']}:{alert['scope_id']}",
        "time": datetime.fromtimestamp(changed_ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": dict(alert),
    }
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: str, timestamp_s: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp_s``."""
    mac = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    *,
    now_s: float,
    tolerance_s: float = 300,
) -> bool:
    """Whether a received request is signed with ``secret`` and recent."""
    try:
        timestamp_s = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - timestamp_s) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp_s, body), signature)


@dataclass(frozen=True)
class DeliveryError(Exception):
    """One attempt failed; ``retryable`` says whether another may succeed."""

    reason: str
    retryable: bool

    def __str__(self) -> str:
        return self.reason


def post(url: str, body: bytes, secret: str, timeout_s: float, now_s: float) -> int:
    """One signed POST; returns the 2xx status or raises ``DeliveryError``.

    Timeouts, connection failures, 408, 429 and 5xx are retryable; any other
    status is the subscriber refusing the event, which a retry will not change.
    """
    timestamp_s = int(now_s)
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": CONTENT_TYPE,
            TIMESTAMP_HEADER: str(timestamp_s),
            SIGNATURE_HEADER: sign(secret, timestamp_s, body),
            "User-Agent": "pantau-webhooks",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status: int = response.status
            response.read()
    except urllib.error.HTTPError as error:
        retryable = error.code in (408, 429) or error.code >= 500
        raise DeliveryError(
            f"HTTP {error.code} {error.reason}", retryable=retryable
        ) from None
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout_s:g} s", True) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"cannot connect: {reason}", True) from None
    return status
