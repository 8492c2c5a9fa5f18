"""The ClickHouse queries behind the monitoring page, parameterised like the
named analytics queries; dates and slots are on the city's clock."""

from __future__ import annotations

from stream_apps.analytics import TIMEZONE

# The configured cameras with their newest state and the counts of their newest
# analysed frame (in the last day).
CAMERAS = """
SELECT
    camera.camera_id AS camera_id,
    camera.kecamatan AS kecamatan,
    camera.kelurahan AS kelurahan,
    status.state AS state,
    status.since AS state_since,
    latest.last_at AS captured_at,
    latest.people AS people,
    latest.vehicles AS vehicles,
    latest.masked AS masked,
    latest.unmasked AS unmasked,
    latest.violators AS violators
FROM {database}.cameras AS camera FINAL
LEFT JOIN
(
    SELECT camera_id, argMax(state, changed_at) AS state, max(changed_at) AS since
    FROM {database}.camera_status FINAL
    GROUP BY camera_id
) AS status ON status.camera_id = camera.camera_id
LEFT JOIN
(
    SELECT
        camera_id,
        max(captured_at) AS last_at,
        argMax(people, captured_at) AS people,
        argMax(arraySum(mapValues(vehicles)), captured_at) AS vehicles,
        argMax(masked, captured_at) AS masked,
        argMax(unmasked, captured_at) AS unmasked,
        argMax(distancing_violators, captured_at) AS violators
    FROM {database}.detections
    WHERE captured_at >= now64(3) - INTERVAL 1 DAY
    GROUP BY camera_id
) AS latest ON latest.camera_id = camera.camera_id
WHERE camera.configured
  AND ({kecamatan:String} = '' OR camera.kecamatan = {kecamatan:String})
ORDER BY camera_id
"""

# Vehicles and people per frame in each 15-minute slot of the day, against the
# same weekday a week earlier: one kecamatan, or every city summed.
MOBILITY = f"""
SELECT
    formatDateTime(toTimeZone(window_start, '{TIMEZONE}'), '%H:%i') AS slot_local,
    round(sumIf(vehicles, day = {{date:Date}})
        / nullIf(sumIf(frames, day = {{date:Date}}), 0), 3) AS vehicles_avg,
    round(sumIf(vehicles, day = {{date:Date}} - 7)
        / nullIf(sumIf(frames, day = {{date:Date}} - 7), 0), 3)
        AS vehicles_avg_last_week,
    round(sumIf(people_sum, day = {{date:Date}})
        / nullIf(sumIf(frames, day = {{date:Date}}), 0), 3) AS people_avg,
    round(sumIf(people_sum, day = {{date:Date}} - 7)
        / nullIf(sumIf(frames, day = {{date:Date}} - 7), 0), 3)
        AS people_avg_last_week
FROM
(
    SELECT
        window_start, frames, people_sum,
        arraySum(mapValues(vehicles_sum)) AS vehicles,
        toDate(window_start, '{TIMEZONE}') AS day
    FROM {{database}}.windows FINAL
    WHERE window_kind = 'TUMBLING'
      AND if({{kecamatan:String}} = '',
             scope_level = 'CITY',
             scope_level = 'KECAMATAN' AND kecamatan = {{kecamatan:String}})
      AND toDate(window_start, '{TIMEZONE}') IN ({{date:Date}}, {{date:Date}} - 7)
)
GROUP BY slot_local
ORDER BY slot_local
"""

# Mask compliance and distancing per kecamatan of the day, or per kelurahan of
# one kecamatan.
REGIONS = f"""
SELECT
    if({{kecamatan:String}} = '', kecamatan, kelurahan) AS region,
    sum(masked_sum) AS masked,
    sum(unmasked_sum) AS unmasked,
    round(masked / nullIf(masked + unmasked, 0), 3) AS compliance_ratio,
    sum(violators_sum) AS violators,
    sum(people_sum) AS people,
    round(violators / nullIf(people, 0), 3) AS violation_ratio
FROM {{database}}.windows FINAL
WHERE window_kind = 'TUMBLING'
  AND toDate(window_start, '{TIMEZONE}') = {{date:Date}}
  AND if({{kecamatan:String}} = '',
         scope_level = 'KECAMATAN',
         scope_level = 'KELURAHAN' AND kecamatan = {{kecamatan:String}})
GROUP BY region
ORDER BY region
"""

ALERTS = """
SELECT alert_id, rule_id, scope_level, scope_id, metric, value, threshold,
       fired_at, message
FROM {database}.alerts FINAL
WHERE state = 'FIRING'
ORDER BY fired_at DESC
LIMIT 100
"""

KECAMATAN_LIST = """
SELECT DISTINCT kecamatan
FROM {database}.cameras FINAL
WHERE configured
ORDER BY kecamatan
"""
