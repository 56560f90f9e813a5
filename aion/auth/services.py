"""API key state changes (issue, rotate, revoke), each audited in the same transaction.

The management commands call these; they return the raw secret exactly once
(it is never stored, logged or audited: only its sha256 and visible prefix).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aion import audit
from aion.auth.keys import forget_cached_principals, generate_key, hash_key
from aion.models import ApiKey
from aion.roles import ALL_ROLES


class ApiKeyRefused(ValueError):
    """A refused key operation (unknown roles, unknown or inactive key)."""


def _snapshot(key: ApiKey) -> dict[str, Any]:
    return {
        "prefix": key.prefix,
        "name": key.name,
        "tenant_id": key.tenant_id,
        "roles": list(key.roles),
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "replaced_by": key.replaced_by.prefix if key.replaced_by else None,
    }


def issue_api_key(name: str, tenant_id: str, roles: Iterable[str], *, actor: Any, expires_at: datetime | None = None) -> tuple[str, ApiKey]:
    roles = sorted(set(roles))
    unknown = set(roles) - ALL_ROLES
    if unknown:
        raise ApiKeyRefused(f"unknown roles: {', '.join(sorted(unknown))}")
    if not tenant_id:
        raise ApiKeyRefused("a key needs a tenant")
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
