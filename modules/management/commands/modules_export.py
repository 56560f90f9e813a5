"""manage.py modules_export: write modules.yml and the active manifests of a tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from modules.catalog import export_catalog
from modules.management.commands._common import add_tenant, tenant_of


class Command(BaseCommand):
    help = "Export the active module manifests and the modules.yml catalog (with sha256 checksums)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_tenant(parser)
        parser.add_argument("--catalog", default=settings.AION_MODULES_CATALOG_PATH, help="default: AION_MODULES_CATALOG_PATH")
        parser.add_argument("--manifests-dir", default="deploy/modules", help="where manifests go, relative to the catalog's folder")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_of(options)
        entries = export_catalog(tenant, Path(options["catalog"]), Path(options["manifests_dir"]))
        for entry in entries:
            self.stdout.write(f"{entry.name} {entry.version} {entry.sha256} {entry.manifest_path}")
        self.stdout.write(self.style.SUCCESS(f"exported {len(entries)} module(s) of {tenant} to {options['catalog']}"))
