"""``manage.py backup``: back up the database (pg_dump or SQLite's backup API) and MongoDB, then prune."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion.ops.choices import BackupKind, BackupStatus
from aion.ops.services import create_backup, prune_backups, run_backups


class Command(BaseCommand):
    help = "Back up the configured database (and MongoDB when MONGO_URL is set) to the backups storage."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--kind", choices=[k.value for k in BackupKind], help="Back up only this (default: database, plus mongo)")
        parser.add_argument("--prune", action="store_true", help="Also delete backups older than AION_BACKUP_RETENTION_DAYS")

    def handle(self, *args: Any, **options: Any) -> None:
        backups = [create_backup(options["kind"])] if options["kind"] else run_backups()
        failed = False
        for backup in backups:
            if backup.status == BackupStatus.SUCCEEDED:
                self.stdout.write(f"backup {backup.pk} {backup.kind} {backup.key} {backup.size_bytes} bytes sha256={backup.sha256}")
            else:
                failed = True
                self.stderr.write(f"backup {backup.pk} {backup.kind} FAILED: {backup.error}")
        if options["prune"]:
            for pruned in prune_backups():
                self.stdout.write(f"pruned {pruned.pk} {pruned.key}")
        if failed:
            raise CommandError("at least one backup failed (see the Backup records and aion_backup_failures_total)")
