"""manage.py webhook_recover: put every failed delivery of a tenant since a time back to pending."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from aion.auth.principal import system_principal
from hooks.models import WebhookEndpoint
from hooks.services import recover_failed


class Command(BaseCommand):
    help = "Recover failed webhook deliveries created since --since (ISO 8601) for --tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--since", required=True)
        parser.add_argument("--endpoint", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        since = parse_datetime(options["since"])
        if since is None or since.tzinfo is None:
            raise CommandError("--since must be an ISO 8601 time with a zone, e.g. 2026-01-01T00:00:00Z")
        endpoint = None
        if options["endpoint"]:
            endpoint = WebhookEndpoint.objects.filter(pk=options["endpoint"], tenant_id=options["tenant"]).first()
            if endpoint is None:
                raise CommandError(f"no endpoint {options['endpoint']} in tenant {options['tenant']}")
        ids = recover_failed(
            tenant_id=options["tenant"], since=since, endpoint=endpoint, actor=system_principal(options["tenant"], name="webhook_recover")
        )
        self.stdout.write(f"Recovered {len(ids)} failed deliveries.")
