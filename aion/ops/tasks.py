"""Beat jobs of the ops app: the nightly backup, log retention and the ClickHouse export."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from aion.ops.jobs import scheduled_job


class BackupFailed(RuntimeError):
    """Raised after the nightly run so the JobRun shows the failure (the Backup row has the detail)."""


@shared_task(name="ops.nightly_backup")
@scheduled_job("ops.nightly_backup")
def nightly_backup() -> dict[str, Any]:
    from aion.ops.choices import BackupStatus
    from aion.ops.services import prune_backups, run_backups

    backups = run_backups()
    pruned = prune_backups()
    failed = [b for b in backups if b.status != BackupStatus.SUCCEEDED]
    if failed:
        raise BackupFailed("; ".join(f"{b.kind}: {b.error}" for b in failed))
    return {"backups": [b.key for b in backups], "pruned": [b.key for b in pruned]}


@shared_task(name="ops.purge_logs")
@scheduled_job("ops.purge_logs")
def purge_logs() -> dict[str, Any]:
    """SQL log tables are purged here; on MongoDB the TTL indexes expire documents (re-applied here)."""
    from aion.ops.logstore import purge_sql_logs, uses_mongo

    outcome: dict[str, Any] = {"sql": purge_sql_logs()}
    if uses_mongo():
        from aion.ops.retention_mongo import apply_retention

        outcome["mongo"] = apply_retention()
    return outcome


@shared_task(name="ops.export_clickhouse")
@scheduled_job("ops.export_clickhouse")
def export_clickhouse() -> dict[str, int]:
    """Router decisions, task latency and audit events to ClickHouse (no-op without CLICKHOUSE_URL)."""
    from aion.ops.clickhouse import export_once

    return export_once()
