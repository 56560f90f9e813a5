"""``manage.py jwt_retire KID``: stop accepting and publishing a key; its tokens get 401 from now on."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from aion import audit
from aion.auth.jwt import retire_key
from aion.management.commands._gateway import operator


class Command(BaseCommand):
    help = "Retire a JWT key id (tokens signed with it are refused with 401)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("kid")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            retire_key(options["kid"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # Platform-wide change: recorded with an empty tenant.
        audit.record("jwt_key.retired", "jwt_key", options["kid"], actor=operator(""), tenant_id="")
        self.stdout.write(f"Retired {options['kid']}; it is no longer accepted or published.")
