"""Shared bits of the Gateway management commands (the operator acting as a system principal)."""

from __future__ import annotations

import getpass
from typing import Any

from aion.auth.principal import system_principal


def operator(tenant_id: str) -> Any:
    """The actor recorded in the audit log for a command run by an operator."""
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        who = "operator"
    return system_principal(tenant_id, name=f"cli:{who}")
