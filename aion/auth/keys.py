"""API keys: parsing AION_GATEWAY_API_KEYS, hashing, and lookup.

Only sha256(secret) is ever stored or kept in memory. Env keys are reloaded on
SIGHUP or restart (``reload_env_keys``), so old and new keys overlap during a
rotation simply by listing both.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from aion.roles import ALL_ROLES


@dataclass(frozen=True)
class EnvKey:
    key_hash: str
    prefix: str
    roles: frozenset[str]
    tenant_id: str


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def generate_key() -> tuple[str, str]:
    """A new (raw key, prefix): 'aion_' + 8 visible chars + '_' + 43 secret chars."""
    prefix = "aion_" + secrets.token_hex(4)
    return f"{prefix}_{secrets.token_urlsafe(32)}", prefix


_GENERATED = re.compile(r"^(aion_[0-9a-f]{8})_.{32,}$")


def visible_prefix(raw: str) -> str:
    """The non-secret name of a key: ``aion_1a2b3c4d`` for generated keys, else ``env_`` + a hash fragment."""
    match = _GENERATED.match(raw)
    return match.group(1) if match else "env_" + hash_key(raw)[:8]


def parse_env_keys(spec: str, default_tenant: str) -> dict[str, EnvKey]:
    """``key:role1|role2[:tenant]``, comma-separated; a bad entry names its position."""
    keys: dict[str, EnvKey] = {}
    for position, entry in enumerate(filter(None, (e.strip() for e in spec.split(","))), start=1):
        parts = entry.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ImproperlyConfigured(f"AION_GATEWAY_API_KEYS entry #{position} must be key:role1|role2[:tenant]")
        roles = frozenset(r for r in parts[1].split("|") if r)
        unknown = roles - ALL_ROLES
        if unknown:
            raise ImproperlyConfigured(f"AION_GATEWAY_API_KEYS entry #{position} has unknown roles: {', '.join(sorted(unknown))}")
        if len(parts[0]) < 16:
            raise ImproperlyConfigured(f"AION_GATEWAY_API_KEYS entry #{position}: keys must be at least 16 characters")
        digest = hash_key(parts[0])
        keys[digest] = EnvKey(
            key_hash=digest,
            prefix=visible_prefix(parts[0]),
            roles=roles,
            tenant_id=parts[2] if len(parts) == 3 and parts[2] else default_tenant,
        )
    return keys


_env_keys: dict[str, EnvKey] | None = None


def env_keys() -> dict[str, EnvKey]:
    global _env_keys
    if _env_keys is None:
        reload_env_keys()
    assert _env_keys is not None
    return _env_keys


def reload_env_keys(spec: str | None = None) -> None:
    """Re-reads AION_GATEWAY_API_KEYS: Vault (AION_GATEWAY_VAULT_PATH, field api_keys) when VAULT_ADDR is set,
    else the variable or the file AION_GATEWAY_API_KEYS_FILE names (a mounted Secret changes without a restart)."""
    from aion.secrets import secret_value

    global _env_keys
    value = (
        spec
        if spec is not None
        else secret_value("AION_GATEWAY_API_KEYS", vault_path=settings.AION_GATEWAY_VAULT_PATH, vault_field="api_keys")
    )
    _env_keys = parse_env_keys(value or "", settings.AION_DEFAULT_TENANT)


def reload_env_keys_safely() -> bool:
    """The SIGHUP handler: a bad new value or an unreachable Vault keeps the current keys (and is logged)."""
    import logging

    from aion.secrets import SecretUnavailable

    try:
        reload_env_keys()
    except (ImproperlyConfigured, SecretUnavailable) as exc:
        logging.getLogger("aion.auth").error("API key reload failed; keeping the current keys", extra={"error": str(exc)})
        return False
    return True


def find_env_key(raw: str) -> EnvKey | None:
    digest = hash_key(raw)
    for candidate_hash, key in env_keys().items():
        if hmac.compare_digest(candidate_hash, digest):
            return key
    return None


# --- the principal cache: a database key costs one lookup per AION_API_KEY_CACHE_SECONDS, not per request ---
# A revoke or rotate clears this process's cache when it commits; every other process stops honouring the
# key within AION_API_KEY_CACHE_SECONDS (and never past the key's own expiry). docs/security.md says so.
_principals: dict[str, tuple[float, datetime | None, Any]] = {}
_principals_lock = threading.Lock()
_PRINCIPALS_MAX = 10_000


def cached_principal(digest: str) -> Any | None:
    entry = _principals.get(digest)
    if entry is None:
        return None
    fresh_until, key_ends_at, principal = entry
    if fresh_until <= time.monotonic() or (key_ends_at is not None and key_ends_at <= timezone.now()):
        with _principals_lock:
            _principals.pop(digest, None)
        return None
    return principal


def cache_principal(digest: str, principal: Any, seconds: float, key_ends_at: datetime | None = None) -> None:
    """Keeps PRINCIPAL for SECONDS (monotonic), and never past KEY_ENDS_AT (the key's expiry or revocation, wall clock)."""
    if seconds <= 0:
        return
    with _principals_lock:
        if len(_principals) >= _PRINCIPALS_MAX:
            _principals.clear()  # crude but bounded; a full cache only costs one lookup per key
        _principals[digest] = (time.monotonic() + seconds, key_ends_at, principal)


def forget_cached_principals() -> None:
    with _principals_lock:
        _principals.clear()
