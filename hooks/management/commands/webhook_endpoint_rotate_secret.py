"""manage.py webhook_endpoint_rotate_secret: a new whsec_ secret; both signatures are sent during the grace."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aion.auth.principal import system_principal


class Command(BaseCommand):
    help = "Rotate an outbound endpoint's signing secret (both signatures are sent for --grace-hours)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("endpoint_id", type=int)
        parser.add_argument("--grace-hours", type=float, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        from hooks.models import WebhookEndpoint
        from hooks.services import rotate_endpoint_secret

        endpoint = WebhookEndpoint.objects.filter(pk=options["endpoint_id"]).first()
        if endpoint is None:
            raise CommandError(f"no webhook endpoint {options['endpoint_id']}")
        if options["grace_hours"] is not None and options["grace_hours"] < 0:
            raise CommandError("--grace-hours must be 0 or more")
        secret = rotate_endpoint_secret(
            endpoint, actor=system_principal(endpoint.tenant_id, name="webhook_endpoint_rotate_secret"), grace_hours=options["grace_hours"]
        )
        self.stdout.write(f"Rotated the secret of endpoint {endpoint.pk} ({endpoint.url}).")
        self.stdout.write("New secret (shown once):")
        self.stdout.write(secret)
