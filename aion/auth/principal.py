"""The authenticated caller, whatever the credential: its subject, tenant and roles."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings

from aion.roles import ALL_ROLES, group_roles


@dataclass(frozen=True)
class Principal:
    kind: str  # "user", "api_key", "jwt", "hook" or "system"
    subject: str  # e.g. "user:alice", "key:ak_1a2b3c4d", "jwt:svc-router"
    tenant_id: str
    roles: frozenset[str]
    allowed_tenants: frozenset[str] = field(default_factory=frozenset)
    user: Any = None
    credential_id: str = ""
    # A kernel.agent credential's binding (issue 17): the host name or pool it may report for ("" = none).
    host: str = ""
    pool: str = ""
    is_authenticated: bool = True

    # DRF and Django expect these on request.user
    is_active: bool = True
    is_anonymous: bool = False

    @property
    def pk(self) -> str:
        return self.subject

    def has_role(self, role: str) -> bool:
        return role in self.roles

    def with_tenant(self, tenant_id: str) -> Principal:
        return replace(self, tenant_id=tenant_id)

    def __str__(self) -> str:
        return self.subject


def system_principal(tenant_id: str, name: str = "system", roles: frozenset[str] = ALL_ROLES) -> Principal:
    """The actor for beat jobs and management commands."""
    return Principal(kind="system", subject=f"system:{name}", tenant_id=tenant_id, roles=roles, allowed_tenants=frozenset({tenant_id}))


def principal_for_user(user: Any) -> Principal:
    """Console users: roles are Django groups of the same names; staff gets nothing implicitly."""
    from aion.models import UserTenant

    roles = group_roles(user.groups.values_list("name", flat=True))
    memberships = list(UserTenant.objects.filter(user=user).values_list("tenant_id", flat=True))
    tenant = memberships[0] if memberships else settings.AION_DEFAULT_TENANT
    return Principal(
        kind="user",
        subject=f"user:{user.get_username()}",
        tenant_id=tenant,
        roles=roles,
        allowed_tenants=frozenset(memberships or [tenant]),
        user=user,
        credential_id=str(user.pk),
    )
