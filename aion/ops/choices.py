"""States and kinds of the ops app (job runs, backups, log types)."""

from django.db import models


class JobRunStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # another run held the lock
    INTERRUPTED = "interrupted"  # the process died while running (found by the next run)


class JobTrigger(models.TextChoices):
    BEAT = "beat"
    MANUAL = "manual"  # manage.py run_job
    CONSOLE = "console"  # the Run-now button


class BackupKind(models.TextChoices):
    POSTGRES = "postgres"
    SQLITE = "sqlite"
    MONGO = "mongo"


class BackupStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PRUNED = "pruned"  # object deleted by retention; the record stays as history


class LogType(models.TextChoices):
    REQUEST = "request"
    AUDIT = "audit"
    TASK = "task"
