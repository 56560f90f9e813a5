"""manage.py modules_rollback NAME --reason ... [--to-version V]: roll a module back (signature re-verified)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from modules import services
from modules.management.commands._common import actor, add_tenant, tenant_of
from modules.models import Module


class Command(BaseCommand):
    help = "Roll a module back to its previous active version (or --to-version), re-verifying the target's signature."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--to-version", default=None)
        parser.add_argument("--reason", required=True)
        add_tenant(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_of(options)
        module = Module.objects.select_related("active_version").filter(tenant_id=tenant, name=options["name"]).first()
        if module is None:
            raise CommandError(f"no module {options['name']!r} in tenant {tenant!r}")
        try:
            activation = services.rollback_module(
                module, actor=actor(tenant, "modules_rollback"), version=options["to_version"], reason=options["reason"]
            )
        except services.ModuleActionError as exc:
            raise CommandError(exc.detail) from exc
        to = activation.to_version.version if activation.to_version else "?"
        self.stdout.write(self.style.SUCCESS(f"{module.name} rolled back to {to}"))
