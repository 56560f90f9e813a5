"""``manage.py apikey_create --name NAME --tenant T --roles a,b [--expires-in-days N] [--host H | --pool P]``: prints the secret once.

``--host``/``--pool`` bind a ``kernel.agent`` key to the one host, or the pool's hosts, it may report for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from aion.auth.services import ApiKeyRefused, issue_api_key
from aion.management.commands._gateway import operator


class Command(BaseCommand):
    help = "Issue an API key (only its sha256 is stored; the secret is printed once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--roles", required=True, help="comma-separated, e.g. kernel.proposer,memory.reader")
        parser.add_argument("--expires-in-days", type=int, default=None)
        parser.add_argument("--host", default="", help="kernel.agent keys: the host name it may report for")
        parser.add_argument("--pool", default="", help="kernel.agent keys: the pool whose hosts it may report for")

    def handle(self, *args: Any, **options: Any) -> None:
        roles = [r.strip() for r in options["roles"].split(",") if r.strip()]
        days = options["expires_in_days"]
        expires_at = timezone.now() + timedelta(days=days) if days else None
        try:
            raw, key = issue_api_key(
                options["name"],
                options["tenant"],
                roles,
                actor=operator(options["tenant"]),
                expires_at=expires_at,
                host=options["host"],
                pool=options["pool"],
            )
        except ApiKeyRefused as exc:
            raise CommandError(str(exc)) from exc
        binding = "".join(f" bound to {what} {value}" for what, value in (("host", key.host), ("pool", key.pool)) if value)
        self.stdout.write(
            f"Created API key {key.prefix} ({key.name}) for tenant {key.tenant_id} with roles {', '.join(key.roles)}{binding}."
        )
        self.stdout.write("Secret (shown once; send it in the x-api-key header):")
        self.stdout.write(raw)
