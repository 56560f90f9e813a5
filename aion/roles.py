"""The role names every credential carries, and the two pseudo-roles a view may declare.

A leaf module (it imports nothing of ours), so identity (``aion.auth``) and the permission
check (``aion.rbac``) both build on it without importing each other in a circle.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Role(StrEnum):
    KERNEL_ADMIN = "kernel.admin"
    KERNEL_PROPOSER = "kernel.proposer"
    KERNEL_BREAKGLASS = "kernel.breakglass"
    # A node agent (issue 17): reads config and policy, writes only its own host's reports (its API key is
    # bound to a host name or a pool, ``ApiKey.host``/``ApiKey.pool``).
    KERNEL_AGENT = "kernel.agent"
    HOOKS_ADMIN = "hooks.admin"
    MEMORY_WRITER = "memory.writer"
    MEMORY_READER = "memory.reader"
    ROUTER_ADMIN = "router.admin"
    MODULES_ADMIN = "modules.admin"
    SECURITY_ADMIN = "security.admin"
    AUDITOR = "auditor"


ALL_ROLES = frozenset(role.value for role in Role)
PUBLIC = "public"  # health, metrics, schema and JWKS only
AUTHENTICATED = "authenticated"  # any credential, any role (e.g. whoami)


def group_roles(group_names: Iterable[str]) -> frozenset[str]:
    """A Console user's roles: the Django groups named like a role (staff gets nothing implicitly)."""
    return frozenset(name for name in group_names if name in ALL_ROLES)
