-- Hourly and daily rollups of the 15-minute tumbling windows, per camera and
-- per region, kept up to date by materialized views on the windows table.
--
-- The windows table receives every revision of a window, and a redelivered
-- batch again: a materialized view sees all of them, so summing would count a
-- window many times. Each rollup instead keeps, per metric, a maxMap keyed by
-- window start: a window's counts only grow from one revision to the next, so
-- the largest value seen per window is its latest, whatever the order or the
-- number of copies. The *_totals views merge those states and add up the
-- windows: read them, not the raw tables.
CREATE TABLE IF NOT EXISTS {database}.windows_hourly
(
    scope_level LowCardinality(String),
    scope_id String,
    hour_start DateTime('UTC'),
    city SimpleAggregateFunction(any, String),
    kecamatan SimpleAggregateFunction(any, String),
    kelurahan SimpleAggregateFunction(any, String),
    frames AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    people_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    faces_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    masked_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    unmasked_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    violators_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    uncalibrated_frames AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    people_max SimpleAggregateFunction(max, UInt32),
    vehicles_sum AggregateFunction(maxMap, Array(Tuple(DateTime64(3, 'UTC'), String)), Array(UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour_start)
ORDER BY (scope_level, scope_id, hour_start)
COMMENT 'Hourly rollup of tumbling windows; read windows_hourly_totals';

CREATE TABLE IF NOT EXISTS {database}.windows_daily
(
    scope_level LowCardinality(String),
    scope_id String,
    day Date,
    city SimpleAggregateFunction(any, String),
    kecamatan SimpleAggregateFunction(any, String),
    kelurahan SimpleAggregateFunction(any, String),
    frames AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    people_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    faces_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    masked_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    unmasked_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    violators_sum AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    uncalibrated_frames AggregateFunction(maxMap, Array(DateTime64(3, 'UTC')), Array(UInt64)),
    people_max SimpleAggregateFunction(max, UInt32),
    vehicles_sum AggregateFunction(maxMap, Array(Tuple(DateTime64(3, 'UTC'), String)), Array(UInt64))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (scope_level, scope_id, day)
COMMENT 'Daily rollup (Asia/Jakarta days) of tumbling windows; read windows_daily_totals';

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.windows_hourly_mv
TO {database}.windows_hourly AS
SELECT
    scope_level,
    scope_id,
    toStartOfHour(window_start) AS hour_start,
    any(city) AS city,
    any(kecamatan) AS kecamatan,
    any(kelurahan) AS kelurahan,
    maxMapState([window_start], [frames]) AS frames,
    maxMapState([window_start], [people_sum]) AS people_sum,
    maxMapState([window_start], [faces_sum]) AS faces_sum,
    maxMapState([window_start], [masked_sum]) AS masked_sum,
    maxMapState([window_start], [unmasked_sum]) AS unmasked_sum,
    maxMapState([window_start], [violators_sum]) AS violators_sum,
    maxMapState([window_start], [uncalibrated_frames]) AS uncalibrated_frames,
    max(people_max) AS people_max,
    maxMapState(
        arrayMap(class -> (window_start, class), mapKeys(vehicles_sum)),
        mapValues(vehicles_sum)
    ) AS vehicles_sum
FROM {database}.windows
WHERE window_kind = 'TUMBLING'
GROUP BY scope_level, scope_id, hour_start;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.windows_daily_mv
TO {database}.windows_daily AS
SELECT
    scope_level,
    scope_id,
    toDate(window_start, 'Asia/Jakarta') AS day,
    any(city) AS city,
    any(kecamatan) AS kecamatan,
    any(kelurahan) AS kelurahan,
    maxMapState([window_start], [frames]) AS frames,
    maxMapState([window_start], [people_sum]) AS people_sum,
    maxMapState([window_start], [faces_sum]) AS faces_sum,
    maxMapState([window_start], [masked_sum]) AS masked_sum,
    maxMapState([window_start], [unmasked_sum]) AS unmasked_sum,
    maxMapState([window_start], [violators_sum]) AS violators_sum,
    maxMapState([window_start], [uncalibrated_frames]) AS uncalibrated_frames,
    max(people_max) AS people_max,
    maxMapState(
        arrayMap(class -> (window_start, class), mapKeys(vehicles_sum)),
        mapValues(vehicles_sum)
    ) AS vehicles_sum
FROM {database}.windows
WHERE window_kind = 'TUMBLING'
GROUP BY scope_level, scope_id, day;

-- Windows landed before this migration: adding them again later is harmless.
INSERT INTO {database}.windows_hourly
SELECT
    scope_level,
    scope_id,
    toStartOfHour(window_start) AS hour_start,
    any(city) AS city,
    any(kecamatan) AS kecamatan,
    any(kelurahan) AS kelurahan,
    maxMapState([window_start], [frames]) AS frames,
    maxMapState([window_start], [people_sum]) AS people_sum,
    maxMapState([window_start], [faces_sum]) AS faces_sum,
    maxMapState([window_start], [masked_sum]) AS masked_sum,
    maxMapState([window_start], [unmasked_sum]) AS unmasked_sum,
    maxMapState([window_start], [violators_sum]) AS violators_sum,
    maxMapState([window_start], [uncalibrated_frames]) AS uncalibrated_frames,
    max(people_max) AS people_max,
    maxMapState(
        arrayMap(class -> (window_start, class), mapKeys(vehicles_sum)),
        mapValues(vehicles_sum)
    ) AS vehicles_sum
FROM {database}.windows
WHERE window_kind = 'TUMBLING'
GROUP BY scope_level, scope_id, hour_start;

INSERT INTO {database}.windows_daily
SELECT
    scope_level,
    scope_id,
    toDate(window_start, 'Asia/Jakarta') AS day,
    any(city) AS city,
    any(kecamatan) AS kecamatan,
    any(kelurahan) AS kelurahan,
    maxMapState([window_start], [frames]) AS frames,
    maxMapState([window_start], [people_sum]) AS people_sum,
    maxMapState([window_start], [faces_sum]) AS faces_sum,
    maxMapState([window_start], [masked_sum]) AS masked_sum,
    maxMapState([window_start], [unmasked_sum]) AS unmasked_sum,
    maxMapState([window_start], [violators_sum]) AS violators_sum,
    maxMapState([window_start], [uncalibrated_frames]) AS uncalibrated_frames,
    max(people_max) AS people_max,
    maxMapState(
        arrayMap(class -> (window_start, class), mapKeys(vehicles_sum)),
        mapValues(vehicles_sum)
    ) AS vehicles_sum
FROM {database}.windows
WHERE window_kind = 'TUMBLING'
GROUP BY scope_level, scope_id, day;

CREATE VIEW IF NOT EXISTS {database}.windows_hourly_totals AS
SELECT
    scope_level,
    scope_id,
    hour_start,
    any(rollup.city) AS city,
    any(rollup.kecamatan) AS kecamatan,
    any(rollup.kelurahan) AS kelurahan,
    length(maxMapMerge(rollup.frames).1) AS windows,
    arraySum(maxMapMerge(rollup.frames).2) AS frames,
    arraySum(maxMapMerge(rollup.people_sum).2) AS people_sum,
    arraySum(maxMapMerge(rollup.faces_sum).2) AS faces_sum,
    arraySum(maxMapMerge(rollup.masked_sum).2) AS masked_sum,
    arraySum(maxMapMerge(rollup.unmasked_sum).2) AS unmasked_sum,
    arraySum(maxMapMerge(rollup.violators_sum).2) AS violators_sum,
    arraySum(maxMapMerge(rollup.uncalibrated_frames).2) AS uncalibrated_frames,
    max(rollup.people_max) AS people_max,
    CAST(
        arrayReduce(
            'sumMap', [arrayMap(key -> key.2, maxMapMerge(rollup.vehicles_sum).1)],
            [maxMapMerge(rollup.vehicles_sum).2]
        ),
        'Map(String, UInt64)'
    ) AS vehicles_sum,
    round(people_sum / nullIf(frames, 0), 3) AS people_avg
FROM {database}.windows_hourly AS rollup
GROUP BY scope_level, scope_id, hour_start;

CREATE VIEW IF NOT EXISTS {database}.windows_daily_totals AS
SELECT
    scope_level,
    scope_id,
    day,
    any(rollup.city) AS city,
    any(rollup.kecamatan) AS kecamatan,
    any(rollup.kelurahan) AS kelurahan,
    length(maxMapMerge(rollup.frames).1) AS windows,
    arraySum(maxMapMerge(rollup.frames).2) AS frames,
    arraySum(maxMapMerge(rollup.people_sum).2) AS people_sum,
    arraySum(maxMapMerge(rollup.faces_sum).2) AS faces_sum,
    arraySum(maxMapMerge(rollup.masked_sum).2) AS masked_sum,
    arraySum(maxMapMerge(rollup.unmasked_sum).2) AS unmasked_sum,
    arraySum(maxMapMerge(rollup.violators_sum).2) AS violators_sum,
    arraySum(maxMapMerge(rollup.uncalibrated_frames).2) AS uncalibrated_frames,
    max(rollup.people_max) AS people_max,
    CAST(
        arrayReduce(
            'sumMap', [arrayMap(key -> key.2, maxMapMerge(rollup.vehicles_sum).1)],
            [maxMapMerge(rollup.vehicles_sum).2]
        ),
        'Map(String, UInt64)'
    ) AS vehicles_sum,
    round(people_sum / nullIf(frames, 0), 3) AS people_avg
FROM {database}.windows_daily AS rollup
GROUP BY scope_level, scope_id, day;
