"""``manage.py jwt_activate KID``: sign new tokens with an already-published key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion import audit
from aion.auth.jwt import set_signing_key
from aion.management.commands._gateway import operator


class Command(BaseCommand):
    help = "Make a published key the signing key (after verifiers have picked up the JWKS)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("kid")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            set_signing_key(options["kid"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # Platform-wide change: recorded with an empty tenant.
        audit.record("jwt_key.activated", "jwt_key", options["kid"], actor=operator(""), tenant_id="")
        self.stdout.write(f"{options['kid']} is now the signing key.")
