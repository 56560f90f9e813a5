"""``manage.py kernel_policy_check [PATH]``: validate a guardrail policy file before deploying it."""

from __future__ import annotations

from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kernel.policy import PolicyError, parse_policy


class Command(BaseCommand):
    help = "Validate a kernel guardrail policy (default: AION_KERNEL_POLICY_PATH); exit 1 with every error when invalid."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("path", nargs="?", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["path"] or str(settings.AION_KERNEL_POLICY_PATH)
        try:
            with open(path, encoding="utf-8") as handle:
                policy = parse_policy(yaml.safe_load(handle), source=path)
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"{path}: {exc}") from exc
        except PolicyError as exc:
            raise CommandError(f"{path} is invalid:\n  - " + "\n  - ".join(exc.errors)) from exc
        keys = sum(len(scope.keys) for scope in policy.scopes.values())
        self.stdout.write(f"{path}: valid ({len(policy.scopes)} scopes, {keys} keys, sha256 {policy.sha256[:16]})")
