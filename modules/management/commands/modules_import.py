"""manage.py modules_import: register and activate every module in modules.yml; any checksum mismatch aborts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from modules.catalog import CatalogError, check_catalog, import_catalog
from modules.management.commands._common import actor, add_tenant


class Command(BaseCommand):
    help = "Import modules.yml: verify every checksum and signature, then register and activate each version (all or nothing)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_tenant(parser)
        parser.add_argument("--catalog", default=settings.AION_MODULES_CATALOG_PATH)
        parser.add_argument("--dry-run", action="store_true", help="verify checksums and signatures only")
        parser.add_argument(
            "--checksums-only", action="store_true", help="with --dry-run: verify checksums and manifests, not signatures (no keys needed)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["checksums_only"]:
            return self._checksums_only(Path(options["catalog"]), dry_run=options["dry_run"])
        tenant = options.get("tenant") or None
        who = actor(tenant or settings.AION_DEFAULT_TENANT, "modules_import")
        try:
            used, imported = import_catalog(Path(options["catalog"]), tenant_id=tenant, actor=who, dry_run=options["dry_run"])
        except CatalogError as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            raise CommandError(f"import refused, nothing changed ({len(exc.problems)} problem(s))") from exc
        for entry in imported:
            state = "registered" if entry.created else "unchanged"
            state = "verified" if options["dry_run"] else state + (", activated" if entry.activated else "")
            self.stdout.write(f"{entry.name} {entry.version}: {state}")
        self.stdout.write(self.style.SUCCESS(f"{len(imported)} module(s) {'verified' if options['dry_run'] else 'imported'} for {used}"))

    def _checksums_only(self, catalog: Path, *, dry_run: bool) -> None:
        # Only as a dry run: an import that skipped signatures would register unverified manifests.
        if not dry_run:
            raise CommandError("--checksums-only needs --dry-run: an import always verifies signatures")
        try:
            entries = check_catalog(catalog)
        except CatalogError as exc:
            for problem in exc.problems:
                self.stderr.write(problem)
            raise CommandError(f"catalog refused ({len(exc.problems)} problem(s))") from exc
        for entry in entries:
            self.stdout.write(f"{entry.name} {entry.version}: checksum verified (signature not checked)")
        self.stdout.write(self.style.SUCCESS(f"{len(entries)} module(s) verified (checksums and manifests) in {catalog}"))
