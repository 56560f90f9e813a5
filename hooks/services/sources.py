"""Inbound hook sources, the write side: create, rotate a secret, enable or disable (the read side is hooks.sources).

A source's secrets live encrypted in ``hooks_hooksourcesecret``, or, when Vault is enabled, in the
Vault document at AION_HOOKS_VAULT_PATH (never in the database).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aion import audit
from aion import secrets as vault
from aion.errors import Conflict
from hooks.crypto import encrypt, fingerprint, new_hook_secret
from hooks.models import HookSource, HookSourceSecret
from hooks.sources import clear_cache, read_vault_path


def _source_grace() -> timedelta:
    return timedelta(hours=settings.AION_HOOK_SECRET_GRACE_HOURS)


def _source_snapshot(source: HookSource) -> dict[str, Any]:
    return {
        "name": source.name,
        "tenant_id": source.tenant_id,
        "scopes": list(source.scopes),
        "service_identity": source.service_identity,
        "enabled": source.enabled,
    }


def _vault_write_source_secret(source: HookSource, secret: str, *, now: datetime, grace: timedelta) -> None:
    """Vault mode: the secret lives at secret/omertaos/hooks under ``<tenant>/<name>``, never in the DB."""
    document = read_vault_path(settings.AION_HOOKS_VAULT_PATH)
    key = f"{source.tenant_id}/{source.name}"
    entry = document.get(key) or {}
    if isinstance(entry, str):
        entry = json.loads(entry)
    kept = []
    for old in entry.get("secrets", []):
        old = {"secret": old, "expires_at": None} if isinstance(old, str) else dict(old)
        if old.get("expires_at") is None:
            old["expires_at"] = (now + grace).isoformat()
        kept.append(old)
    document[key] = {
        "tenant": source.tenant_id,
        "name": source.name,
        "scopes": list(source.scopes),
        "service_identity": source.service_identity,
        "secrets": [{"secret": secret, "expires_at": None}, *kept],
    }
    vault.write_kv(settings.AION_HOOKS_VAULT_PATH, document)
    clear_cache()


def create_hook_source(
    *, tenant_id: str, name: str, scopes: list[str], actor: Any, service_identity: str = "", now: datetime | None = None
) -> tuple[HookSource, str]:
    """A new source and its first secret (returned once, never shown again)."""
    now = now or timezone.now()
    if HookSource.objects.filter(tenant_id=tenant_id, name=name).exists():
        raise Conflict(f"A hook source named {name!r} already exists for this tenant.", code="duplicate-source")
    secret = new_hook_secret()
    with transaction.atomic():
        source = HookSource.objects.create(
            tenant_id=tenant_id, name=name, scopes=sorted(set(scopes)), service_identity=service_identity or f"hook:{name}"
        )
        if vault.vault_enabled():
            _vault_write_source_secret(source, secret, now=now, grace=_source_grace())
        else:
            HookSourceSecret.objects.create(
                source=source, secret_encrypted=encrypt(secret), fingerprint=fingerprint(secret), created_at=now
            )
        audit.record(
            "hooks.source.created", "hook_source", source.pk, actor=actor, tenant_id=tenant_id,
            after={**_source_snapshot(source), "secret_fingerprint": fingerprint(secret)},
        )  # fmt: skip
    return source, secret


def rotate_hook_source_secret(source: HookSource, *, actor: Any, grace_hours: float | None = None, now: datetime | None = None) -> str:
    """A new active secret; the previous ones stay valid for the grace period, so senders can switch over."""
    now = now or timezone.now()
    grace = timedelta(hours=grace_hours) if grace_hours is not None else _source_grace()
    secret = new_hook_secret()
    with transaction.atomic():
        locked = HookSource.objects.select_for_update().get(pk=source.pk)
        if vault.vault_enabled():
            _vault_write_source_secret(locked, secret, now=now, grace=grace)
        else:
            HookSourceSecret.objects.filter(source=locked, expires_at__isnull=True).update(expires_at=now + grace)
            HookSourceSecret.objects.create(
                source=locked, secret_encrypted=encrypt(secret), fingerprint=fingerprint(secret), created_at=now
            )
        audit.record(
            "hooks.source.secret_rotated", "hook_source", locked.pk, actor=actor, tenant_id=locked.tenant_id,
            after={"secret_fingerprint": fingerprint(secret), "previous_valid_until": (now + grace).isoformat()},
        )  # fmt: skip
    return secret


def set_hook_source_enabled(source: HookSource, enabled: bool, *, actor: Any) -> HookSource:
    with transaction.atomic():
        before = _source_snapshot(source)
        HookSource.objects.filter(pk=source.pk).update(enabled=enabled)
        source.refresh_from_db()
        audit.record(
            "hooks.source.enabled" if enabled else "hooks.source.disabled", "hook_source", source.pk,
            actor=actor, tenant_id=source.tenant_id, before=before, after=_source_snapshot(source),
        )  # fmt: skip
    return source
