-- Detection events from pantau.detections, one row per analysed frame.
-- ReplacingMergeTree with event_id in the key: a redelivered event collapses
-- into its first row, so FINAL shows every frame once.
CREATE TABLE IF NOT EXISTS {database}.detections
(
    event_id String COMMENT 'deterministic id of the analysed frame',
    camera_id LowCardinality(String),
    city LowCardinality(String),
    kecamatan LowCardinality(String),
    kelurahan LowCardinality(String),
    frame_seq UInt64,
    captured_at DateTime64(3, 'UTC') COMMENT 'capture time of the frame',
    processed_at DateTime64(3, 'UTC'),
    width_px UInt32,
    height_px UInt32,
    model_versions Map(LowCardinality(String), String),
    calibrated Bool COMMENT 'distances from a ground-plane calibration',
    people UInt32,
    vehicles Map(LowCardinality(String), UInt32) COMMENT 'vehicles by class',
    faces UInt32,
    masked UInt32,
    unmasked UInt32,
    distancing_violators UInt32,
    detections Array(Tuple(
        class_name LowCardinality(String),
        score Float32,
        x_min Float32,
        y_min Float32,
        x_max Float32,
        y_max Float32,
        mask_state LowCardinality(String),
        violation Bool
    )) COMMENT 'boxes normalised to 0..1 of the frame'
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(captured_at)
ORDER BY (camera_id, captured_at, event_id)
COMMENT 'Detection events from pantau.detections, one row per frame after FINAL';
