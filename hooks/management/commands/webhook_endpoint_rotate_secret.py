"""manage.py webhook_endpoint_rotate_secret: a new whsec_ secret; both signatures are sent during the grace."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from aion.auth.principal import system_principal
from hooks.management.commands._rotate_secret import RotateSecretCommand
from hooks.models import WebhookEndpoint
from hooks.services import rotate_endpoint_secret


class Command(RotateSecretCommand):
    help = "Rotate an outbound endpoint's signing secret (both signatures are sent for --grace-hours)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("endpoint_id", type=int)
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        endpoint = WebhookEndpoint.objects.filter(pk=options["endpoint_id"]).first()
        if endpoint is None:
            raise CommandError(f"no webhook endpoint {options['endpoint_id']}")
        grace_hours = self.grace_hours(options)
        actor = system_principal(endpoint.tenant_id, name="webhook_endpoint_rotate_secret")
        secret = rotate_endpoint_secret(endpoint, actor=actor, grace_hours=grace_hours)
        self.write_secret(f"Rotated the secret of endpoint {endpoint.pk} ({endpoint.url}).", secret)
