"""The ops app: job runner records, backups, the log store and its retention, ClickHouse export."""

from django.apps import AppConfig


class Config(AppConfig):
    name = "aion.ops"
    label = "ops"
    verbose_name = "Operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from aion.ops import (
            logstore,
            metrics,  # noqa: F401 - declares aion_backup_failures_total at start-up (0 before any failure)
        )

        logstore.connect()
