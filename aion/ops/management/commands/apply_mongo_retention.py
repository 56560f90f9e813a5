"""``manage.py apply_mongo_retention``: create or update the TTL indexes of the MongoDB log collections."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from aion.ops.retention_mongo import apply_retention, retention_plan


class Command(BaseCommand):
    help = "Create/update TTL indexes on created_at (AION_ENV defaults, AION_LOG_TTL_DAYS override). Idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Print the plan without touching MongoDB")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dry_run"]:
            for collection, seconds in retention_plan().items():
                self.stdout.write(f"{collection}: expireAfterSeconds={seconds} ({seconds // 86400} days)")
            return
        if not settings.MONGO_URL:
            raise CommandError("MONGO_URL is not set: logs are in SQL tables, purged by the ops.purge_logs job")
        for collection, outcome in apply_retention().items():
            seconds = outcome["expire_after_seconds"]
            self.stdout.write(f"{collection}: {outcome['action']} expireAfterSeconds={seconds} ({outcome['days']} days)")
