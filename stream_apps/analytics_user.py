"""A read-only ClickHouse user for analysts, for server deployments.

The user may run SELECT on Pantau's database and nothing else: its settings
profile sets ``readonly = 1`` (no writes, no settings changes, no DDL) and a
time limit per query. Two forms of the same definition are produced:

- a ``users.d`` XML file, for servers whose users live in configuration files
  (a ClickHouse server's ``/etc/clickhouse-server/users.d/``), and
- SQL statements, for servers with SQL-driven access control.

The password never appears: both forms carry its SHA-256.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

PROFILE = "pantau_analytics"
MAX_EXECUTION_TIME_S = 300
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class AnalyticsUserError(ValueError):
    """The analytics user cannot be defined as asked."""


@dataclass(frozen=True)
class AnalyticsUser:
    """A read-only user of one database."""

    name: str
    password_sha256_hex: str
    database: str
    networks: tuple[str, ...]

    @classmethod
    def create(
        cls, name: str, password: str, database: str, networks: tuple[str, ...]
    ) -> AnalyticsUser:
        """Check every value and hash the password."""
        for what, value in (("user name", name), ("database", database)):
            if not _IDENTIFIER.match(value):
                raise AnalyticsUserError(
                    f"{what}: expected letters, digits and '_' (not first), "
                    f"got {value!r}"
                )
        if len(password) < 12:
            raise AnalyticsUserError(
                f"password: expected at least 12 characters, got {len(password)}"
            )
        if not networks:
            raise AnalyticsUserError("networks: expected at least one, got none")
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise AnalyticsUserError(
                    f"network: expected an address or CIDR such as 10.0.0.0/8, "
                    f"got {network!r}"
                ) from None
        digest = hashlib.sha256(password.encode()).hexdigest()
        return cls(name, digest, database, networks)

    def users_xml(self) -> str:
        """The user as a ``users.d`` file."""
        networks = "\n".join(
            f"                <ip>{escape(network)}</ip>" for network in self.networks
        )
        return f"""\
<!-- Read-only analytics user for Pantau, from `pantau db analytics-user`. -->
<clickhouse>
    <profiles>
        <{PROFILE}>
            <readonly>1</readonly>
            <max_execution_time>{MAX_EXECUTION_TIME_S}</max_execution_time>
        </{PROFILE}>
    </profiles>
    <users>
        <{self.name}>
            <password_sha256_hex>{self.password_sha256_hex}</password_sha256_hex>
            <networks>
{networks}
            </networks>
            <profile>{PROFILE}</profile>
            <quota>default</quota>
            <grants>
                <query>GRANT SELECT ON {self.database}.*</query>
            </grants>
        </{self.name}>
    </users>
</clickhouse>
"""

    def access_sql(self) -> list[str]:
        """The user as SQL statements, to run as an access-management user."""
        hosts = ", ".join(f"IP '{network}'" for network in self.networks)
        return [
            f"CREATE SETTINGS PROFILE IF NOT EXISTS {PROFILE} SETTINGS "
            f"readonly = 1, max_execution_time = {MAX_EXECUTION_TIME_S}",
            f"CREATE USER IF NOT EXISTS {self.name} IDENTIFIED WITH sha256_hash BY "
            f"'{self.password_sha256_hex}' HOST {hosts} SETTINGS PROFILE '{PROFILE}'",
            f"GRANT SELECT ON {self.database}.* TO {self.name}",
        ]
