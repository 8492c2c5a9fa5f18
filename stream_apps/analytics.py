"""The named analytics queries a city analyst runs with ``pantau sql NAME``.

Every query reads its tables with FINAL (one row per window, per camera state
change, per camera) and takes its values as ClickHouse query parameters
(``{name:Type}``), never by pasting text into SQL. Dates are calendar days in
``TIMEZONE``, the city's clock.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

TIMEZONE = "Asia/Jakarta"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class QueryArgumentError(ValueError):
    """A named query was given wrong or missing values."""


@dataclass(frozen=True)
class Parameter:
    """One value a named query takes."""

    name: str
    clickhouse_type: str
    help: str
    default: str | None = None

    def parse(self, raw: str) -> Any:
        """The value from its command-line text."""
        try:
            if self.clickhouse_type == "Date":
                return dt.date.fromisoformat(raw)
            if self.clickhouse_type == "UInt32":
                value = int(raw)
                if value < 0:
                    raise ValueError("negative")
                return value
        except ValueError:
            raise QueryArgumentError(
                f"--{self.name}: expected {self.help}, got {raw!r}"
            ) from None
        return raw


@dataclass(frozen=True)
class NamedQuery:
    """A ready query and the values it takes."""

    name: str
    summary: str
    parameters: tuple[Parameter, ...]
    sql: str

    def bind(self, raw: dict[str, str]) -> dict[str, Any]:
        """ClickHouse parameters from ``--name value`` pairs (dashes in a flag
        become underscores); names every problem."""
        known = {p.name for p in self.parameters}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise QueryArgumentError(
                f"query {self.name} takes {_flags(self.parameters)}, got unknown "
                f"{', '.join('--' + name for name in unknown)}"
            )
        values = {}
        for parameter in self.parameters:
            text = raw.get(parameter.name, parameter.default)
            if text is None:
                raise QueryArgumentError(
                    f"query {self.name} needs --{parameter.name} ({parameter.help})"
                )
            values[parameter_name(parameter.name)] = parameter.parse(text)
        return values

    def render(self, database: str) -> str:
        """The SQL for ``database``; values stay parameters."""
        if not _IDENTIFIER.match(database):
            raise QueryArgumentError(
                f"database name must be a plain identifier, got {database!r}"
            )
        return self.sql.replace("{database}", database)


def _flags(parameters: tuple[Parameter, ...]) -> str:
    return ", ".join(f"--{p.name}" for p in parameters) or "no values"


_DATE = Parameter("date", "Date", "a date as YYYY-MM-DD")
_KECAMATAN = Parameter("kecamatan", "String", "a kecamatan name")

QUERIES: tuple[NamedQuery, ...] = (
    NamedQuery(
        "mobility-curve",
        "vehicles and people per 15-minute window of one day, for a kecamatan",
        (_KECAMATAN, _DATE),
        f"""
SELECT
    toTimeZone(window_start, '{TIMEZONE}') AS window_start_local,
    frames,
    round(arraySum(mapValues(vehicles_sum)) / frames, 3) AS vehicles_avg,
    round(people_sum / frames, 3) AS people_avg,
    people_max
FROM {{database}}.windows FINAL
WHERE scope_level = 'KECAMATAN' AND window_kind = 'TUMBLING'
  AND kecamatan = {{kecamatan:String}}
  AND toDate(window_start, '{TIMEZONE}') = {{date:Date}}
  AND frames > 0
ORDER BY window_start
""",
    ),
    NamedQuery(
        "compliance-ranking",
        "mask compliance of every kelurahan over the 7 days from --week-start, "
        "lowest first",
        (Parameter("week-start", "Date", "the first day as YYYY-MM-DD"),),
        f"""
SELECT
    city, kecamatan, kelurahan,
    sum(masked_sum) AS masked,
    sum(unmasked_sum) AS unmasked,
    round(masked / nullIf(masked + unmasked, 0), 3) AS compliance_ratio
FROM {{database}}.windows FINAL
WHERE scope_level = 'KELURAHAN' AND window_kind = 'TUMBLING'
  AND toDate(window_start, '{TIMEZONE}') >= {{week_start:Date}}
  AND toDate(window_start, '{TIMEZONE}') < {{week_start:Date}} + 7
GROUP BY city, kecamatan, kelurahan
ORDER BY compliance_ratio ASC NULLS LAST, masked + unmasked DESC, kelurahan
""",
    ),
    NamedQuery(
        "distancing-hotspots",
        "cameras and hours of the day with the most distancing violators, "
        "from --from-date to --to-date (inclusive)",
        (
            Parameter("from-date", "Date", "the first day as YYYY-MM-DD"),
            Parameter("to-date", "Date", "the last day as YYYY-MM-DD"),
            Parameter("limit", "UInt32", "a row count", default="20"),
        ),
        f"""
SELECT
    scope_id AS camera_id,
    kecamatan, kelurahan,
    toHour(toTimeZone(window_start, '{TIMEZONE}')) AS hour_local,
    sum(violators_sum) AS violators,
    sum(people_sum) AS people,
    round(violators / nullIf(people, 0), 3) AS violation_ratio
FROM {{database}}.windows FINAL
WHERE scope_level = 'CAMERA' AND window_kind = 'TUMBLING'
  AND toDate(window_start, '{TIMEZONE}') BETWEEN {{from_date:Date}} AND {{to_date:Date}}
GROUP BY camera_id, kecamatan, kelurahan, hour_local
HAVING violators > 0
ORDER BY violators DESC, camera_id, hour_local
LIMIT {{limit:UInt32}}
""",
    ),
    NamedQuery(
        "camera-uptime",
        "share of monitored time each configured camera was ONLINE, from "
        "--from-date to --to-date (inclusive), lowest first",
        (
            Parameter("from-date", "Date", "the first day as YYYY-MM-DD"),
            Parameter("to-date", "Date", "the last day as YYYY-MM-DD"),
        ),
        f"""
WITH
    toUnixTimestamp64Milli(toDateTime64({{from_date:Date}}, 3, '{TIMEZONE}'))
        AS period_start_ms,
    toUnixTimestamp64Milli(toDateTime64({{to_date:Date}} + 1, 3, '{TIMEZONE}'))
        AS period_end_ms
SELECT
    camera.camera_id AS camera_id,
    camera.kecamatan AS kecamatan,
    camera.kelurahan AS kelurahan,
    round(sumIf(spell.seconds, spell.state = 'ONLINE') / 3600, 2) AS online_hours,
    round(sumIf(spell.seconds, spell.state NOT IN ('', 'INACTIVE')) / 3600, 2)
        AS monitored_hours,
    round(online_hours / nullIf(monitored_hours, 0), 3) AS uptime_ratio,
    countIf(spell.state IN ('OFFLINE', 'FROZEN') AND spell.seconds > 0) AS outages
FROM {{database}}.cameras AS camera FINAL
LEFT JOIN
(
    SELECT
        camera_id,
        state,
        greatest(0, least(next_ms, period_end_ms) - greatest(start_ms, period_start_ms))
            / 1000 AS seconds
    FROM
    (
        SELECT
            camera_id,
            state,
            toUnixTimestamp64Milli(changed_at) AS start_ms,
            leadInFrame(toUnixTimestamp64Milli(changed_at), 1, period_end_ms) OVER (
                PARTITION BY camera_id ORDER BY changed_at
                ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING
            ) AS next_ms
        FROM {{database}}.camera_status FINAL
        WHERE toUnixTimestamp64Milli(changed_at) < period_end_ms
    )
) AS spell ON spell.camera_id = camera.camera_id
WHERE camera.configured
GROUP BY camera_id, kecamatan, kelurahan
ORDER BY uptime_ratio ASC NULLS FIRST, camera_id
""",
    ),
    NamedQuery(
        "density-vs-last-week",
        "people per frame in each 15-minute slot of --date, against the same "
        "weekday a week earlier, for a kecamatan",
        (_KECAMATAN, _DATE),
        f"""
SELECT
    formatDateTime(toTimeZone(window_start, '{TIMEZONE}'), '%H:%i') AS slot_local,
    round(sumIf(people_sum, day = {{date:Date}})
        / nullIf(sumIf(frames, day = {{date:Date}}), 0), 3) AS people_avg,
    round(sumIf(people_sum, day = {{date:Date}} - 7)
        / nullIf(sumIf(frames, day = {{date:Date}} - 7), 0), 3)
        AS people_avg_last_week
FROM
(
    SELECT *, toDate(window_start, '{TIMEZONE}') AS day
    FROM {{database}}.windows FINAL
    WHERE scope_level = 'KECAMATAN' AND window_kind = 'TUMBLING'
      AND kecamatan = {{kecamatan:String}}
      AND toDate(window_start, '{TIMEZONE}') IN ({{date:Date}}, {{date:Date}} - 7)
)
GROUP BY slot_local
ORDER BY slot_local
""",
    ),
)


def named_query(name: str) -> NamedQuery | None:
    """The named query called ``name``, if there is one."""
    for query in QUERIES:
        if query.name == name:
            return query
    return None


def parse_flags(words: list[str]) -> dict[str, str]:
    """``--name value`` (or ``--name=value``) pairs from the command line."""
    values: dict[str, str] = {}
    index = 0
    while index < len(words):
        word = words[index]
        if not word.startswith("--") or word == "--":
            raise QueryArgumentError(f"expected --name value, got {word!r}")
        name, equals, value = word[2:].partition("=")
        if not equals:
            if index + 1 >= len(words):
                raise QueryArgumentError(f"--{name} needs a value")
            index += 1
            value = words[index]
        values[name] = value
        index += 1
    return values


def parameter_name(flag: str) -> str:
    """The ClickHouse parameter of a flag: dashes become underscores."""
    return flag.replace("-", "_")
