-- ClickHouse backup (runbook "Backups"): replicate the analytics tables to S3-compatible storage with
-- the S3 table engine, one Parquet object per table and day under aion-backups/clickhouse/<table>/.
--
-- Once, as a ClickHouse admin (credentials from the secret store, never from this file):
--   CREATE NAMED COLLECTION aion_backups_s3 AS
--       url = 'http://minio:9000/aion-backups/clickhouse/', access_key_id = '...', secret_access_key = '...';
-- Then nightly:  clickhouse-client -n < bigdata/sql/backup/clickhouse_to_s3.sql
-- Each run rewrites the day objects (s3_truncate_on_insert) with what the tables hold, so the copy
-- follows the tables' TTL. Restore: INSERT INTO aion.<table>
--   SELECT * FROM s3(aion_backups_s3, filename = '<table>/<YYYYMMDD or *>.parquet', format = 'Parquet');
SET s3_truncate_on_insert = 1;

CREATE TABLE IF NOT EXISTS aion.router_decisions_s3 AS aion.router_decisions
    ENGINE = S3(aion_backups_s3, filename = 'router_decisions/{_partition_id}.parquet', format = 'Parquet')
    PARTITION BY toYYYYMMDD(decided_at);
CREATE TABLE IF NOT EXISTS aion.task_latency_s3 AS aion.task_latency
    ENGINE = S3(aion_backups_s3, filename = 'task_latency/{_partition_id}.parquet', format = 'Parquet')
    PARTITION BY toYYYYMMDD(observed_at);
CREATE TABLE IF NOT EXISTS aion.audit_events_s3 AS aion.audit_events
    ENGINE = S3(aion_backups_s3, filename = 'audit_events/{_partition_id}.parquet', format = 'Parquet')
    PARTITION BY toYYYYMMDD(created_at);

INSERT INTO aion.router_decisions_s3 SELECT * FROM aion.router_decisions;
INSERT INTO aion.task_latency_s3 SELECT * FROM aion.task_latency;
INSERT INTO aion.audit_events_s3 SELECT * FROM aion.audit_events;
