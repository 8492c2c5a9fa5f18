-- Alert lifecycle from pantau.alerts: one row per alert after FINAL, the
-- RESOLVED message replacing its FIRING one (the version is the time of the
-- latest change).
CREATE TABLE IF NOT EXISTS {database}.alerts
(
    alert_id String COMMENT 'one firing, shared by its FIRING and RESOLVED messages',
    rule_id LowCardinality(String),
    scope_level LowCardinality(String) COMMENT 'CAMERA, KELURAHAN, KECAMATAN or CITY',
    scope_id String,
    state LowCardinality(String) COMMENT 'FIRING or RESOLVED',
    metric LowCardinality(String),
    value Float64 COMMENT 'the metric when the state last changed',
    threshold Float64,
    fired_at DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    changed_at DateTime64(3, 'UTC') COMMENT 'resolved_at, else fired_at',
    message String
)
ENGINE = ReplacingMergeTree(changed_at)
PARTITION BY toYYYYMM(fired_at)
ORDER BY (rule_id, scope_level, scope_id, fired_at, alert_id)
COMMENT 'Alerts from pantau.alerts, one row per alert after FINAL';

-- Camera health history from pantau.camera-status: every state change kept,
-- a redelivered change collapsing into its first row.
CREATE TABLE IF NOT EXISTS {database}.camera_status
(
    camera_id LowCardinality(String),
    state LowCardinality(String) COMMENT 'ONLINE, OFFLINE, FROZEN, RECONNECTING or INACTIVE',
    changed_at DateTime64(3, 'UTC'),
    reason Nullable(String) COMMENT 'why the state changed, credentials redacted',
    last_frame_at Nullable(DateTime64(3, 'UTC'))
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(changed_at)
ORDER BY (camera_id, changed_at, state)
COMMENT 'Camera state changes from pantau.camera-status, one row per change after FINAL';

-- The camera dimension, written from the configuration at start-up: the
-- latest row per camera (FINAL) describes it; cameras taken out of the
-- configuration stay, with configured = false.
CREATE TABLE IF NOT EXISTS {database}.cameras
(
    camera_id LowCardinality(String),
    city LowCardinality(String),
    kecamatan LowCardinality(String),
    kelurahan LowCardinality(String),
    source_kind LowCardinality(String) COMMENT 'auto, file, stream or snapshot',
    sample_interval_s Float64,
    active_from String COMMENT 'local HH:MM:SS; equal to active_until means all day',
    active_until String COMMENT 'local HH:MM:SS, excluded',
    timezone LowCardinality(String),
    calibrated Bool COMMENT 'has a ground-plane calibration',
    configured Bool COMMENT 'false once the camera left the configuration',
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY camera_id
COMMENT 'Cameras as configured, one row per camera after FINAL';

-- The region dimension: every kelurahan, kecamatan and city with the number
-- of configured cameras in it, derived from the cameras table.
CREATE VIEW IF NOT EXISTS {database}.regions AS
SELECT
    level_row.1 AS scope_level,
    level_row.2 AS scope_id,
    level_row.3 AS city,
    level_row.4 AS kecamatan,
    level_row.5 AS kelurahan,
    count() AS cameras
FROM
(
    SELECT arrayJoin([
        ('KELURAHAN', concat(c.city, '/', c.kecamatan, '/', c.kelurahan),
            c.city, c.kecamatan, c.kelurahan),
        ('KECAMATAN', concat(c.city, '/', c.kecamatan), c.city, c.kecamatan, ''),
        ('CITY', c.city, c.city, '', '')
    ]) AS level_row
    FROM {database}.cameras AS c FINAL
    WHERE c.configured
)
GROUP BY level_row;
