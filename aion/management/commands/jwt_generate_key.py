"""``manage.py jwt_generate_key [--alg ES256|RS256] [--publish-only]``: a new signing key pair with a new kid."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from aion import audit
from aion.auth.jwt import generate_signing_key, jwks_path
from aion.management.commands._gateway import operator


class Command(BaseCommand):
    help = "Generate a JWT signing key pair: private half to the secret store, public half published in the JWKS."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--alg", choices=["ES256", "RS256"], default="ES256")
        parser.add_argument("--publish-only", action="store_true", help="publish the public key now but keep signing with the current key")

    def handle(self, *args: Any, **options: Any) -> None:
        kid = generate_signing_key(options["alg"], make_current=not options["publish_only"])
        # Platform-wide change: recorded with an empty tenant.
        audit.record(
            "jwt_key.generated",
            "jwt_key",
            kid,
            actor=operator(""),
            tenant_id="",
            after={"alg": options["alg"], "signing": not options["publish_only"]},
        )
        role = "published (not yet signing)" if options["publish_only"] else "published and now the signing key"
        self.stdout.write(f"{kid}: {options['alg']} key {role}; JWKS at {jwks_path()}.")
        self.stdout.write(kid)
