"""The base of the two rotate-secret commands (hook sources, outbound endpoints).

The leading underscore keeps Django from listing this module as a command of its own.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class RotateSecretCommand(BaseCommand):
    """``--grace-hours`` (0 or more; default from settings) and the new secret printed once."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--grace-hours", type=float, default=None)

    def grace_hours(self, options: dict[str, Any]) -> float | None:
        grace_hours: float | None = options["grace_hours"]
        if grace_hours is not None and grace_hours < 0:
            raise CommandError("--grace-hours must be 0 or more")
        return grace_hours

    def write_secret(self, summary: str, secret: str) -> None:
        self.stdout.write(summary)
        self.stdout.write("New secret (shown once):")
        self.stdout.write(secret)
