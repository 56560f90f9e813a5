-- Router decisions, one row per decision (outbox topic aion.router.decisions), written by the
-- ops.export_clickhouse Celery task. decided_at is the event's occurred_at; the TTL uses it.
CREATE TABLE IF NOT EXISTS aion.router_decisions
(
    decided_at      DateTime('UTC'),
    event_id        UUID,
    tenant_id       LowCardinality(String),
    task_id         String,
    route           LowCardinality(String),
    target          LowCardinality(String),
    strategy        LowCardinality(String),
    chosen_by       LowCardinality(String),
    reason          String,
    policy_revision UInt32,
    payload         String
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(decided_at)
ORDER BY (tenant_id, decided_at, event_id)
TTL decided_at + INTERVAL 90 DAY;
