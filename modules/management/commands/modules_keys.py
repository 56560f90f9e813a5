"""manage.py modules_keys: the key-rotation report (trusted keys, windows, what each active module verifies with)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from modules.reports import key_rotation_report


class Command(BaseCommand):
    help = "Print the Cosign key-rotation report (add --json for machine output)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", default=None, help="only this tenant (default: every tenant)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        report = key_rotation_report(options.get("tenant"))
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        for error in report["key_errors"]:
            self.stderr.write(f"key error: {error}")
        for key in report["keys"]:
            self.stdout.write(
                f"{key['key_id']:<20} {key['state']:<8} {key['not_before'] or '-'} .. {key['not_after'] or '-'} "
                f"{key['source']} {key['fingerprint'][:23]} verifies {key['modules_verified_now']} module(s)"
            )
        for module in report["modules"]:
            status = "ok" if module["verifies_now"] else f"FAIL {module['reason']}"
            self.stdout.write(f"  {module['module']} {module['version']} (registered with {module['registered_key_id']}): {status}")
        self.stdout.write(f"{report['would_fail']} module(s) would fail re-verification")
