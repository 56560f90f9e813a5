-- Task latency, one row per target call (outbox topic aion.metrics.runtime, event router.sample),
-- written by ops.export_clickhouse. observed_at is the event's occurred_at; the TTL uses it.
CREATE TABLE IF NOT EXISTS aion.task_latency
(
    observed_at DateTime('UTC'),
    event_id    UUID,
    tenant_id   LowCardinality(String),
    task_id     String,
    target      LowCardinality(String),
    route       LowCardinality(String),
    outcome     LowCardinality(String),
    latency_ms  Float64,
    tokens      UInt64,
    cost_usd    Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(observed_at)
ORDER BY (tenant_id, target, observed_at)
TTL observed_at + INTERVAL 90 DAY;
