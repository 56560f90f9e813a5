"""manage.py modules_pull REFERENCE [--activate]: the optional ORAS source (needs AION_ORAS_REGISTRY)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from modules import oras_source, services
from modules.management.commands._common import actor, add_register_options, refusal, tenant_of


class Command(BaseCommand):
    help = "Pull a module manifest and its Cosign signature from the ORAS registry, then register it (e.g. to reapply a rollback)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference", help="e.g. modules/summarizer:1.2.0 (under AION_ORAS_REGISTRY)")
        add_register_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_of(options)
        try:
            document = oras_source.fetch_manifest(options["reference"])
            result = services.register_module(
                tenant,
                document,
                actor=actor(tenant, "modules_pull"),
                activate=options["activate"],
                reason=options["reason"] or f"pulled {options['reference']}",
            )
        except oras_source.OrasUnavailable as exc:
            raise CommandError(str(exc)) from exc
        except services.ModuleActionError as exc:
            raise refusal(exc) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{result.version.module.name} {result.version.version} {'registered' if result.created else 'unchanged'}"
                + (", activated" if result.activated else "")
            )
        )
