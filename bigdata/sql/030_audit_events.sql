-- Audit events, one row per audit record (outbox topic aion.audit.activity), written by
-- ops.export_clickhouse. created_at is the event's occurred_at; the TTL uses it.
CREATE TABLE IF NOT EXISTS aion.audit_events
(
    created_at    DateTime('UTC'),
    event_id      UUID,
    tenant_id     LowCardinality(String),
    actor         String,
    action        LowCardinality(String),
    resource_type LowCardinality(String),
    resource_id   String,
    result        LowCardinality(String),
    request_id    String
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(created_at)
ORDER BY (tenant_id, created_at, event_id)
TTL created_at + INTERVAL 90 DAY;
