"""``manage.py apikey_rotate PREFIX [--grace-hours H]``: a new key now; the old one expires after the grace period."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from aion.auth.services import ApiKeyRefused, find_key, rotate_api_key
from aion.management.commands._gateway import operator


class Command(BaseCommand):
    help = "Rotate an API key: issue its replacement (printed once) and expire the old one after a grace period."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("prefix")
        parser.add_argument("--grace-hours", type=float, default=None, help="default AION_API_KEY_ROTATION_GRACE_HOURS")

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["grace_hours"]
        grace = timedelta(hours=hours if hours is not None else settings.AION_API_KEY_ROTATION_GRACE_HOURS)
        try:
            old = find_key(options["prefix"])
            raw, new = rotate_api_key(old.prefix, actor=operator(old.tenant_id), grace=grace)
        except ApiKeyRefused as exc:
            raise CommandError(str(exc)) from exc
        old.refresh_from_db()
        self.stdout.write(f"Rotated {old.prefix}: it keeps working until {old.expires_at:%Y-%m-%d %H:%M:%S %Z}.")
        self.stdout.write(f"New key {new.prefix} ({new.name}), secret (shown once):")
        self.stdout.write(raw)
