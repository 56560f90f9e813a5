"""``manage.py apikey_revoke PREFIX``: the key stops working immediately."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion.auth.services import ApiKeyRefused, find_key, revoke_api_key
from aion.management.commands._gateway import operator


class Command(BaseCommand):
    help = "Revoke an API key now."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            key = find_key(options["prefix"])
            key = revoke_api_key(key.prefix, actor=operator(key.tenant_id))
        except ApiKeyRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Revoked {key.prefix} ({key.name}) at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}.")
