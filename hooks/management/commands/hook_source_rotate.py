"""manage.py hook_source_rotate: a new secret for a hook source; the old one stays valid for the grace."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aion.auth.principal import system_principal


class Command(BaseCommand):
    help = "Rotate a hook source's secret; previous secrets stay valid for --grace-hours (default AION_WEBHOOK_SECRET_GRACE_HOURS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--grace-hours", type=float, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        from hooks.models import HookSource
        from hooks.services import rotate_hook_source_secret

        source = HookSource.objects.filter(tenant_id=options["tenant"], name=options["name"]).first()
        if source is None:
            raise CommandError(f"no hook source {options['tenant']}/{options['name']}")
        if options["grace_hours"] is not None and options["grace_hours"] < 0:
            raise CommandError("--grace-hours must be 0 or more")
        secret = rotate_hook_source_secret(
            source, actor=system_principal(source.tenant_id, name="hook_source_rotate"), grace_hours=options["grace_hours"]
        )
        self.stdout.write(f"Rotated the secret of {source.tenant_id}/{source.name}; previous secrets expire after the grace.")
        self.stdout.write("New secret (shown once):")
        self.stdout.write(secret)
