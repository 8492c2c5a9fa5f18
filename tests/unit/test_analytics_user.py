"""The analytics user's definition: checked values, no password in the output."""

from __future__ import annotations

import hashlib

import pytest

from stream_apps.analytics_user import AnalyticsUser, AnalyticsUserError

PASSWORD = "a long enough secret"


def test_both_forms_carry_the_hash_the_grant_and_the_networks() -> None:
    user = AnalyticsUser.create("analyst", PASSWORD, "pantau", ("10.0.0.0/8", "::1"))
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    xml = user.users_xml()
    assert f"<password_sha256_hex>{digest}</password_sha256_hex>" in xml
    assert "<readonly>1</readonly>" in xml
    assert "GRANT SELECT ON pantau.*" in xml
    assert "<ip>10.0.0.0/8</ip>" in xml and "<ip>::1</ip>" in xml
    profile, create, grant = user.access_sql()
    assert "readonly = 1" in profile
    assert f"sha256_hash BY '{digest}'" in create
    assert "HOST IP '10.0.0.0/8', IP '::1'" in create
    assert grant == "GRANT SELECT ON pantau.* TO analyst"
    assert PASSWORD not in xml + "".join(user.access_sql())


@pytest.mark.parametrize(
    ("name", "password", "database", "networks", "message"),
    [
        ("analyst; DROP", PASSWORD, "pantau", ("::/0",), "user name: expected"),
        ("analyst", PASSWORD, "pan-tau", ("::/0",), "database: expected"),
        ("analyst", "short", "pantau", ("::/0",), "at least 12 characters, got 5"),
        ("analyst", PASSWORD, "pantau", ("10.0.0.300",), "got '10.0.0.300'"),
        ("analyst", PASSWORD, "pantau", (), "expected at least one"),
    ],
)
def test_bad_values_are_named(
    name: str, password: str, database: str, networks: tuple[str, ...], message: str
) -> None:
    with pytest.raises(AnalyticsUserError, match=message):
        AnalyticsUser.create(name, password, database, networks)
