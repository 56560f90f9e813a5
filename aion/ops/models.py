"""Models of the ops app: job runs, backups, and the SQL log store (request and task logs).

Audit logs live in ``aion.AuditRecord`` (written in the caller's transaction); the
SQL log store purges it under the same retention settings as the tables here.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from aion.ops.choices import BackupKind, BackupStatus, JobRunStatus, JobTrigger


class JobRun(models.Model):
    """One run of a scheduled job: when, how it ended, and what it logged."""

    job_name = models.CharField(max_length=200, db_index=True)
    status = models.CharField(max_length=16, choices=JobRunStatus.choices, default=JobRunStatus.RUNNING, db_index=True)
    trigger = models.CharField(max_length=16, choices=JobTrigger.choices, default=JobTrigger.BEAT)
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    result = models.TextField(blank=True, help_text="repr() of the return value, truncated")
    log_excerpt = models.TextField(blank=True, help_text="The last log lines emitted during the run")
    traceback = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["job_name", "-started_at"], name="ops_jobrun_job_recent_idx")]

    def __str__(self) -> str:
        return f"{self.job_name} {self.status} @ {self.started_at:%Y-%m-%d %H:%M:%S}"


class Backup(models.Model):
    """One backup object in the ``backups`` storage (created only complete: temp key, then copy)."""

    kind = models.CharField(max_length=16, choices=BackupKind.choices)
    status = models.CharField(max_length=16, choices=BackupStatus.choices, default=BackupStatus.RUNNING, db_index=True)
    key = models.CharField(max_length=500, blank=True, help_text="Object key in the backups storage, e.g. pg/20261127T020000Z.dump")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    method = models.CharField(max_length=32, blank=True, help_text="pg_dump, sqlite-backup-api, mongodump or pymongo-export")
    tool = models.CharField(
        max_length=64, blank=True, help_text="The tool and version that wrote it, e.g. mongodump 100.14.0 or pymongo 4.20.1"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pruned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} {self.key or '(no object)'}"


class RequestLog(models.Model):
    """One served HTTP request (the SQL log store; MongoDB collection ``request_logs`` when MONGO_URL is set)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    request_id = models.CharField(max_length=128, blank=True, db_index=True)
    method = models.CharField(max_length=16)
    path = models.CharField(max_length=2000)
    route = models.CharField(max_length=200, blank=True)
    status = models.PositiveSmallIntegerField()
    duration_ms = models.FloatField(default=0)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"


class TaskLog(models.Model):
    """One finished Celery task (the SQL log store; MongoDB collection ``task_logs`` when MONGO_URL is set)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    task_name = models.CharField(max_length=200, db_index=True)
    task_id = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=32)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.task_name} {self.status}"


class ExportCursor(models.Model):
    """How far an exporter has read the outbox (the ClickHouse exporter resumes from here)."""

    name = models.CharField(max_length=100, unique=True)
    last_event_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_event_id}"
