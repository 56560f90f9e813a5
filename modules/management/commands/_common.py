"""Shared bits of the modules management commands."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from aion.auth.principal import Principal, system_principal


def add_tenant(parser: CommandParser) -> None:
    parser.add_argument("--tenant", default=None, help="tenant id (default: AION_DEFAULT_TENANT)")


def tenant_of(options: dict[str, Any]) -> str:
    return str(options.get("tenant") or settings.AION_DEFAULT_TENANT)


def actor(tenant: str, command: str) -> Principal:
    return system_principal(tenant, command)
