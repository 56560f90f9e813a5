-- Retention of the analytics tables, parameterised by AION_CLICKHOUSE_TTL_DAYS.
--   As shipped (90 days):  clickhouse-client -n < bigdata/sql/clickhouse_retention.sql
--   With the variable:     python manage.py render_clickhouse_retention | clickhouse-client -n
-- The render command rewrites only the SET line below. Each TTL is on the column the exporter writes.
SET param_ttl_days = 90;
ALTER TABLE aion.router_decisions MODIFY TTL decided_at + toIntervalDay({ttl_days:UInt32});
ALTER TABLE aion.task_latency MODIFY TTL observed_at + toIntervalDay({ttl_days:UInt32});
ALTER TABLE aion.audit_events MODIFY TTL created_at + toIntervalDay({ttl_days:UInt32});
