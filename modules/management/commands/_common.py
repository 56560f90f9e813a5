"""Shared bits of the modules management commands."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from aion.auth.principal import Principal, system_principal


def add_tenant(parser: CommandParser) -> None:
    parser.add_argument("--tenant", default=None, help="tenant id (default: AION_DEFAULT_TENANT)")


def tenant_of(options: dict[str, Any]) -> str:
    return str(options.get("tenant") or settings.AION_DEFAULT_TENANT)


def actor(tenant: str, command: str) -> Principal:
    return system_principal(tenant, command)


def add_register_options(parser: CommandParser) -> None:
    """The options of the commands that register a manifest (modules_register, modules_pull)."""
    parser.add_argument("--activate", action="store_true")
    parser.add_argument("--reason", default="")
    add_tenant(parser)


def refusal(exc: Any) -> CommandError:
    """A ``modules.services.ModuleActionError`` as a command error, with its field errors."""
    details = "; ".join(f"{p}: {', '.join(m)}" for p, m in (exc.errors or {}).items())
    return CommandError(f"{exc.detail} {details}".strip())
