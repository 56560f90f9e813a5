"""manage.py hook_source_add: create an inbound hook source and print its secret once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aion.auth.principal import system_principal
from aion.errors import DomainError
from hooks.choices import HookScope
from hooks.services import create_hook_source


class Command(BaseCommand):
    help = "Create a hook source (name, tenant, scopes); the secret is printed once (to Vault when VAULT_ADDR is set)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--scopes", required=True, help="comma-separated: " + ", ".join(HookScope.values))
        parser.add_argument("--service-identity", default="", help="the service account the hook acts as")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        unknown = sorted(set(scopes) - set(HookScope.values))
        if unknown or not scopes:
            raise CommandError(f"unknown scopes {unknown}; choose from {', '.join(HookScope.values)}")
        try:
            source, secret = create_hook_source(
                tenant_id=options["tenant"],
                name=options["name"],
                scopes=scopes,
                service_identity=options["service_identity"],
                actor=system_principal(options["tenant"], name="hook_source_add"),
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from None
        self.stdout.write(f"Created hook source {source.tenant_id}/{source.name} (id {source.pk}) with scopes {', '.join(source.scopes)}.")
        self.stdout.write("Secret (shown once; store it in the sender):")
        self.stdout.write(secret)
