-- Window aggregates from pantau.windows. ReplacingMergeTree keeps, per window,
-- the row with the highest revision: read it with FINAL for one row per window.
CREATE TABLE IF NOT EXISTS {database}.windows
(
    scope_level LowCardinality(String) COMMENT 'CAMERA, KELURAHAN, KECAMATAN or CITY',
    scope_id String COMMENT 'camera id, or region path city/kecamatan/kelurahan',
    window_kind LowCardinality(String) COMMENT 'TUMBLING or ROLLING',
    window_start DateTime64(3, 'UTC') COMMENT 'inclusive, event (capture) time',
    window_end DateTime64(3, 'UTC') COMMENT 'exclusive',
    city LowCardinality(String),
    kecamatan LowCardinality(String),
    kelurahan LowCardinality(String),
    revision UInt64 COMMENT 'higher revision replaces lower',
    is_final Bool,
    updated_at DateTime64(3, 'UTC'),
    frames UInt64 COMMENT 'distinct frames counted',
    people_sum UInt64,
    people_max UInt32,
    people_avg Float64 MATERIALIZED if(frames = 0, 0, people_sum / frames),
    vehicles_sum Map(LowCardinality(String), UInt64),
    faces_sum UInt64,
    masked_sum UInt64,
    unmasked_sum UInt64,
    violators_sum UInt64,
    uncalibrated_frames UInt64,
    first_captured_at DateTime64(3, 'UTC'),
    last_captured_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(revision)
PARTITION BY toYYYYMM(window_start)
ORDER BY (scope_level, scope_id, window_kind, window_start)
COMMENT 'Window aggregates from pantau.windows, one row per window after FINAL';
