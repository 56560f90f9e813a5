"""``manage.py restore <backup> [--target-database X] --yes``: restore a backup (id, key or ``latest``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion.ops.services import BackupError, find_backup, restore_backup


class Command(BaseCommand):
    help = "Restore a backup into the configured database, or into --target-database (created when missing)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("backup", help="Backup id, object key (e.g. pg/20261127T020000Z.dump) or 'latest'")
        parser.add_argument("--target-database", help="Restore into this database (PostgreSQL name, SQLite path or MongoDB name)")
        parser.add_argument("--yes", action="store_true", help="Confirm: the target's current contents are replaced")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            backup = find_backup(options["backup"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        target = options["target_database"] or "the configured database"
        if not options["yes"]:
            raise CommandError(f"refusing to restore {backup.key} into {target} without --yes (its contents would be replaced)")
        try:
            outcome = restore_backup(backup, target_database=options["target_database"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"restored {backup.key} into {outcome['target']} in {outcome['duration_ms']} ms")
