"""API key state changes (issue, rotate, revoke), each audited in the same transaction.

The management commands call these; they return the raw secret exactly once
(it is never stored, logged or audited: only its sha256 and visible prefix).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aion import audit
from aion.auth.keys import forget_cached_principals, generate_key, hash_key
from aion.models import ApiKey
from aion.roles import ALL_ROLES, Role

# What a kernel.agent key may be bound to (issue 17); kernel.hosts validates reports with the same patterns.
HOST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")  # a DNS name or node name, 1-253 characters
POOL_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")  # a node pool label value, 1-63 characters


class ApiKeyRefused(ValueError):
    """A refused key operation (unknown roles, unknown or inactive key, a bad host or pool binding)."""


def _check_binding(roles: list[str], host: str, pool: str) -> None:
    """A kernel.agent key carries only that role and is bound to a host or a pool (or both); no other key is bound."""
    if Role.KERNEL_AGENT in roles:
        if roles != [Role.KERNEL_AGENT]:
            raise ApiKeyRefused("a kernel.agent key carries no other role")
        if not host and not pool:
            raise ApiKeyRefused("a kernel.agent key must be bound to a host (--host) or a pool (--pool)")
    elif host or pool:
        raise ApiKeyRefused("only kernel.agent keys are bound to a host or a pool")
    if host and not HOST_NAME.match(host):
        raise ApiKeyRefused(f"bad host name {host!r}: 1-253 letters, digits, '.', '_' or '-'")
    if pool and not POOL_NAME.match(pool):
        raise ApiKeyRefused(f"bad pool name {pool!r}: 1-63 letters, digits, '.', '_' or '-'")


def _snapshot(key: ApiKey) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "name": key.name,
        "tenant_id": key.tenant_id,
        "roles": list(key.roles),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "replaced_by": key.replaced_by.prefix if key.replaced_by else None,
        "host": key.host,
        "pool": key.pool,
    }


def issue_api_key(
    name: str,
    tenant_id: str,
    roles: Iterable[str],
    *,
    actor: Any,
    expires_at: datetime | None = None,
    host: str = "",
    pool: str = "",
) -> tuple[str, ApiKey]:
    """A new key; HOST/POOL bind a kernel.agent key to the host or pool it may report for."""
    roles = sorted(set(roles))
    unknown = set(roles) - ALL_ROLES
    if unknown:
        raise ApiKeyRefused(f"unknown roles: {', '.join(sorted(unknown))}")
    if not tenant_id:
        raise ApiKeyRefused("a key needs a tenant")
    _check_binding(roles, host, pool)
    raw, prefix = generate_key()
    with transaction.atomic():
        key = ApiKey.objects.create(
            prefix=prefix,
            name=name,
            tenant_id=tenant_id,
            roles=roles,
            key_hash=hash_key(raw),
            expires_at=expires_at,
            created_by=str(getattr(actor, "subject", actor)),
            host=host,
            pool=pool,
        )
        audit.record("apikey.created", "api_key", key.prefix, actor=actor, tenant_id=tenant_id, after=_snapshot(key))
    return raw, key


def find_key(prefix: str) -> ApiKey:
    key = ApiKey.objects.filter(prefix=prefix).first()
    if key is None:
        raise ApiKeyRefused(f"no API key with prefix {prefix!r}")
    return key


def rotate_api_key(prefix: str, *, actor: Any, grace: timedelta | None = None, now: datetime | None = None) -> tuple[str, ApiKey]:
    """A new key with the same name, tenant and roles; the old one keeps working for GRACE, then expires."""
    now = now or timezone.now()
    grace = grace if grace is not None else timedelta(hours=settings.AION_API_KEY_ROTATION_GRACE_HOURS)
    raw, new_prefix = generate_key()
    with transaction.atomic():
        old = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if old is None:
            raise ApiKeyRefused(f"no API key with prefix {prefix!r}")
        if not old.is_active(now):
            raise ApiKeyRefused(f"key {prefix!r} is already expired or revoked")
        before = _snapshot(old)
        new = ApiKey.objects.create(
            prefix=new_prefix,
            name=old.name,
            tenant_id=old.tenant_id,
            roles=old.roles,
            key_hash=hash_key(raw),
            created_by=str(getattr(actor, "subject", actor)),
            created_at=now,
            host=old.host,
            pool=old.pool,
        )
        old_end = now + grace
        old.expires_at = min(old.expires_at, old_end) if old.expires_at else old_end
        old.replaced_by = new
        old.save(update_fields=["expires_at", "replaced_by"])
        audit.record("apikey.rotated", "api_key", old.prefix, actor=actor, tenant_id=old.tenant_id, before=before, after=_snapshot(old))
        audit.record("apikey.created", "api_key", new.prefix, actor=actor, tenant_id=new.tenant_id, after=_snapshot(new))
        transaction.on_commit(forget_cached_principals)
    return raw, new


def revoke_api_key(prefix: str, *, actor: Any, now: datetime | None = None) -> ApiKey:
    now = now or timezone.now()
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(prefix=prefix).first()
        if key is None:
            raise ApiKeyRefused(f"no API key with prefix {prefix!r}")
        if key.revoked_at is not None:
            return key
        before = _snapshot(key)
        key.revoked_at = now
        key.save(update_fields=["revoked_at"])
        audit.record("apikey.revoked", "api_key", key.prefix, actor=actor, tenant_id=key.tenant_id, before=before, after=_snapshot(key))
        transaction.on_commit(forget_cached_principals)  # this process at once; the others within the cache TTL
    return key
