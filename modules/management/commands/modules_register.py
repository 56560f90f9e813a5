"""manage.py modules_register FILE [--activate]: register a manifest file (YAML or JSON)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from modules import manifest as manifests
from modules import services
from modules.management.commands._common import actor, add_register_options, refusal, tenant_of


class Command(BaseCommand):
    help = "Validate, verify and register a module manifest file; --activate makes it the active version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("manifest", help="path to the manifest (YAML or JSON)")
        add_register_options(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_of(options)
        try:
            document = manifests.parse_yaml(Path(options["manifest"]).read_bytes())
            result = services.register_module(
                tenant, document, actor=actor(tenant, "modules_register"), activate=options["activate"], reason=options["reason"]
            )
        except OSError as exc:
            raise CommandError(f"cannot read {options['manifest']}: {exc.strerror}") from exc
        except manifests.ManifestInvalid as exc:
            raise CommandError(str(exc)) from exc
        except services.ModuleActionError as exc:
            raise refusal(exc) from exc
        version = result.version
        state = "registered" if result.created else "already registered (identical)"
        self.stdout.write(
            self.style.SUCCESS(
                f"{version.module.name} {version.version} {state}, key {version.signature_key_id}"
                + (", activated" if result.activated else "")
            )
        )
