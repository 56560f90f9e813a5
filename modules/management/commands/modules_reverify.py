"""manage.py modules_reverify [--enforce]: re-verify every active module against the current trusted keys."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from modules.services import reverify_modules


class Command(BaseCommand):
    help = (
        "Re-verify the active version of every enabled module against today's trusted Cosign keys (run after a key rotation). "
        "Reports modules that would fail (exit 1); with --enforce, disables them (exit 0)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default=None, help="only this tenant (default: every tenant)")
        parser.add_argument("--enforce", action="store_true", help="disable modules that fail")

    def handle(self, *args: Any, **options: Any) -> None:
        results = reverify_modules(options.get("tenant"), enforce=options["enforce"], actor="system:modules_reverify")
        failures = [r for r in results if not r.ok]
        for r in results:
            where = f"{r.module.tenant_id}/{r.module.name} {r.version}"
            if r.ok:
                self.stdout.write(f"OK    {where} verified by {r.key_id}")
            else:
                action = " -> DISABLED" if r.disabled else ""
                self.stdout.write(f"FAIL  {where} (registered with {r.registered_key_id}): {r.reason}: {r.detail}{action}")
        self.stdout.write(f"{len(results)} checked, {len(failures)} failing")
        if failures and not options["enforce"]:
            raise CommandError(f"{len(failures)} module(s) would fail verification; rerun with --enforce to disable them")
