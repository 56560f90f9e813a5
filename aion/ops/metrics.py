"""Prometheus metrics of the ops app (names fixed by the runbook where it names them)."""

from prometheus_client import Counter, Histogram

BACKUP_FAILURES = Counter("aion_backup_failures_total", "Backups that failed (nothing complete-looking is left behind)", ["kind"])
BACKUPS = Counter("aion_backups_total", "Backups that completed", ["kind"])
JOB_RUNS = Counter("aion_job_runs_total", "Scheduled job runs by outcome", ["job", "status"])
JOB_DURATION = Histogram(
    "aion_job_duration_seconds", "Scheduled job run time", ["job"], buckets=(0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800, 3600)
)
LOG_ENTRIES_DROPPED = Counter("aion_log_entries_dropped_total", "Request/task log entries dropped because the buffer was full")
LOG_PURGED = Counter("aion_log_rows_purged_total", "Log rows deleted by retention", ["log_type"])
CLICKHOUSE_EXPORTED = Counter("aion_clickhouse_rows_exported_total", "Rows written to ClickHouse", ["table"])
