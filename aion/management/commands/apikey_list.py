"""``manage.py apikey_list [--tenant T] [--all]``: keys and their state (never secrets)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from aion.auth.keys import env_keys
from aion.models import ApiKey


class Command(BaseCommand):
    help = "List API keys (database and AION_GATEWAY_API_KEYS); shows prefixes, never secrets."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", default=None)
        parser.add_argument("--all", action="store_true", help="include expired and revoked keys")

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        keys = ApiKey.objects.order_by("tenant_id", "name", "-created_at")
        if options["tenant"]:
            keys = keys.filter(tenant_id=options["tenant"])
        self.stdout.write(f"{'PREFIX':<16} {'SOURCE':<6} {'TENANT':<12} {'STATE':<8} {'NAME':<24} {'EXPIRES':<20} {'LAST USED':<20} ROLES")
        for key in keys:
            state = "revoked" if key.revoked_at else ("active" if key.is_active(now) else "expired")
            if state != "active" and not options["all"]:
                continue
            expires = f"{key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "-"
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "-"
            roles = ",".join(key.roles) + "".join(f" {what}={value}" for what, value in (("host", key.host), ("pool", key.pool)) if value)
            name = key.name[:24]
            self.stdout.write(f"{key.prefix:<16} {'db':<6} {key.tenant_id:<12} {state:<8} {name:<24} {expires:<20} {used:<20} {roles}")
        for env_key in env_keys().values():
            if options["tenant"] and env_key.tenant_id != options["tenant"]:
                continue
            self.stdout.write(
                f"{env_key.prefix:<16} {'env':<6} {env_key.tenant_id:<12} {'active':<8} {'AION_GATEWAY_API_KEYS':<24} {'-':<20} {'-':<20} "
                f"{','.join(sorted(env_key.roles))}"
            )
