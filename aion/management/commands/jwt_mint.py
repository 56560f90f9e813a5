"""``manage.py jwt_mint --sub NAME --tenant T --roles a,b [--ttl SECONDS] [--kid KID]``: a service-account token."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion.auth.jwt import mint_token


class Command(BaseCommand):
    help = "Mint a service-account JWT signed with the current key (printed once, to stdout only)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--sub", required=True, help="the service account name")
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--roles", default="", help="comma-separated")
        parser.add_argument("--ttl", type=int, default=None, help="seconds (default AION_JWT_DEFAULT_TTL_SECONDS)")
        parser.add_argument("--kid", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        roles = [r.strip() for r in options["roles"].split(",") if r.strip()]
        try:
            token = mint_token(options["sub"], roles, options["tenant"], ttl_seconds=options["ttl"], kid=options["kid"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(token)
