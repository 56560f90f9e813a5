"""Where inbound hook sources and their secrets come from (read side).

Three origins, merged per tenant:

* ``AION_HOOK_SOURCES`` (bootstrap and tests): ``name:tenant:secret:scope1|scope2``, comma-separated;
* Vault KV v2 at ``secret/omertaos/hooks`` when VAULT_ADDR is set (the runbook's home for them);
* otherwise the database (``HookSource`` + Fernet-encrypted ``HookSourceSecret`` rows).

Vault layout: one KV key per source, named ``<tenant>/<name>``, whose value is an
object (or its JSON text) ``{"scopes": [...], "service_identity": "...",
"secrets": [{"secret": "...", "expires_at": null | ISO-8601}, ...]}``; a plain
string in ``secrets`` never expires. Vault answers are cached in-process for
``VAULT_CACHE_SECONDS`` so a hook does not cost a Vault round trip.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from aion import secrets as vault

logger = logging.getLogger("hooks.sources")

VAULT_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class ResolvedSource:
    name: str
    tenant_id: str
    scopes: frozenset[str]
    secrets: tuple[str, ...]  # valid now, active first
    service_identity: str = ""
    origin: str = "db"  # env | vault | db
    source_pk: int | None = field(default=None, compare=False)


class SourceConfigError(ValueError):
    pass


def parse_env_sources(spec: str) -> list[ResolvedSource]:
    """``name:tenant:secret:scope1|scope2``, comma-separated; a bad entry names its position."""
    found: list[ResolvedSource] = []
    for position, entry in enumerate((part.strip() for part in (spec or "").split(",")), start=1):
        if not entry:
            continue
        pieces = entry.split(":", 2)
        if len(pieces) != 3 or ":" not in pieces[2]:
            raise SourceConfigError(f"AION_HOOK_SOURCES entry {position} is not name:tenant:secret:scopes")
        name, tenant, rest = pieces
        secret, scopes = rest.rsplit(":", 1)
        if not (name and tenant and secret):
            raise SourceConfigError(f"AION_HOOK_SOURCES entry {position} has an empty name, tenant or secret")
        found.append(
            ResolvedSource(
                name=name,
                tenant_id=tenant,
                scopes=frozenset(s for s in scopes.split("|") if s),
                secrets=(secret,),
                service_identity=f"hook:{name}",
                origin="env",
            )
        )
    return found


def env_sources() -> list[ResolvedSource]:
    try:
        return parse_env_sources(settings.AION_HOOK_SOURCES)
    except SourceConfigError:
        logger.exception("ignoring AION_HOOK_SOURCES")
        return []


_vault_cache: dict[str, Any] = {}
_vault_lock = threading.Lock()


def clear_cache() -> None:
    with _vault_lock:
        _vault_cache.clear()


def read_vault_document() -> dict[str, Any]:
    """The KV document at AION_HOOKS_VAULT_PATH (cached briefly); {} when Vault is not configured."""
    if not vault.vault_enabled():
        return {}
    with _vault_lock:
        cached = _vault_cache.get("doc")
        if cached and time.monotonic() - cached[0] < VAULT_CACHE_SECONDS:
            return dict(cached[1])
    document = read_vault_path(settings.AION_HOOKS_VAULT_PATH)
    with _vault_lock:
        _vault_cache["doc"] = (time.monotonic(), document)
    return dict(document)


def read_vault_path(path: str) -> dict[str, Any]:
    """The KV document at PATH; {} when it does not exist yet. Other failures raise SecretUnavailable."""
    try:
        return dict(vault.read_kv(path) or {})
    except vault.SecretUnavailable as exc:
        from hvac.exceptions import InvalidPath

        if isinstance(exc.__cause__, InvalidPath):
            return {}
        raise


def _valid_secrets(entries: Any, now: datetime) -> tuple[str, ...]:
    valid: list[str] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if isinstance(entry, str) and entry:
            valid.append(entry)
        elif isinstance(entry, dict) and entry.get("secret"):
            expires = parse_datetime(str(entry.get("expires_at") or "")) if entry.get("expires_at") else None
            if expires is None or expires > now:
                valid.append(str(entry["secret"]))
    return tuple(valid)


def vault_sources(tenant_id: str, now: datetime) -> list[ResolvedSource]:
    found = []
    for key, raw in read_vault_document().items():
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except ValueError:
                continue
        if not isinstance(value, dict):
            continue
        tenant, _, name = str(key).partition("/")
        tenant = str(value.get("tenant") or tenant)
        name = str(value.get("name") or name or key)
        if tenant != tenant_id:
            continue
        secrets = _valid_secrets(value.get("secrets") or value.get("secret") or [], now)
        if secrets:
            found.append(
                ResolvedSource(
                    name=name,
                    tenant_id=tenant,
                    scopes=frozenset(str(s) for s in value.get("scopes") or []),
                    secrets=secrets,
                    service_identity=str(value.get("service_identity") or f"hook:{name}"),
                    origin="vault",
                )
            )
    return found


def database_sources(tenant_id: str, now: datetime) -> list[ResolvedSource]:
    from hooks.crypto import decrypt
    from hooks.models import HookSource

    found = []
    sources = HookSource.objects.filter(tenant_id=tenant_id, enabled=True).prefetch_related("secrets")
    for source in sources:
        rows = [s for s in source.secrets.all() if s.expires_at is None or s.expires_at > now]
        rows.sort(key=lambda s: (s.expires_at is not None, -(s.expires_at or s.created_at).timestamp()))
        secrets = tuple(decrypt(s.secret_encrypted) for s in rows)
        if secrets:
            found.append(
                ResolvedSource(
                    name=source.name,
                    tenant_id=source.tenant_id,
                    scopes=frozenset(source.scopes or []),
                    secrets=secrets,
                    service_identity=source.service_identity or f"hook:{source.name}",
                    origin="db",
                    source_pk=source.pk,
                )
            )
    return found


def sources_for_tenant(tenant_id: str, now: datetime | None = None) -> list[ResolvedSource]:
    """Every source that may sign for TENANT right now, with the secrets valid at NOW."""
    now = now or timezone.now()
    found = [s for s in env_sources() if s.tenant_id == tenant_id]
    if vault.vault_enabled():
        found += vault_sources(tenant_id, now)
    else:
        found += database_sources(tenant_id, now)
    return found
