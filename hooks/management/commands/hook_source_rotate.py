"""manage.py hook_source_rotate: a new secret for a hook source; the old one stays valid for the grace."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from aion.auth.principal import system_principal
from hooks.management.commands._rotate_secret import RotateSecretCommand
from hooks.models import HookSource
from hooks.services import rotate_hook_source_secret


class Command(RotateSecretCommand):
    help = "Rotate a hook source's secret; previous secrets stay valid for --grace-hours (default AION_WEBHOOK_SECRET_GRACE_HOURS)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--name", required=True)
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        source = HookSource.objects.filter(tenant_id=options["tenant"], name=options["name"]).first()
        if source is None:
            raise CommandError(f"no hook source {options['tenant']}/{options['name']}")
        grace_hours = self.grace_hours(options)
        actor = system_principal(source.tenant_id, name="hook_source_rotate")
        secret = rotate_hook_source_secret(source, actor=actor, grace_hours=grace_hours)
        self.write_secret(f"Rotated the secret of {source.tenant_id}/{source.name}; previous secrets expire after the grace.", secret)
