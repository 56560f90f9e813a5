"""One code path for secrets: Vault KV v2 when VAULT_ADDR is set, else env / *_FILE / database.

``read_kv(path)`` returns the latest version of a KV v2 secret (e.g.
``omertaos/hooks`` under mount ``secret``) or None when Vault is not
configured. Token auth (VAULT_TOKEN) or AppRole (VAULT_ROLE_ID/VAULT_SECRET_ID).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


class SecretUnavailable(RuntimeError):
    """Vault is configured but could not answer."""


def vault_enabled() -> bool:
    return bool(settings.VAULT_ADDR)


def vault_client() -> Any:
    import hvac

    client = hvac.Client(url=settings.VAULT_ADDR, token=settings.VAULT_TOKEN or None, timeout=5)
    if not settings.VAULT_TOKEN and settings.VAULT_ROLE_ID:
        client.auth.approle.login(role_id=settings.VAULT_ROLE_ID, secret_id=settings.VAULT_SECRET_ID)
    return client


def read_kv(path: str) -> dict[str, Any] | None:
    if not vault_enabled():
        return None
    try:
        response = vault_client().secrets.kv.v2.read_secret_version(
            path=path, mount_point=settings.VAULT_MOUNT, raise_on_deleted_version=True
        )
    except Exception as exc:
        raise SecretUnavailable(f"Vault read of {settings.VAULT_MOUNT}/{path} failed: {type(exc).__name__}") from exc
    return dict(response["data"]["data"])


def write_kv(path: str, data: dict[str, Any]) -> None:
    if not vault_enabled():
        raise SecretUnavailable("VAULT_ADDR is not set")
    vault_client().secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point=settings.VAULT_MOUNT)


# --- The one lookup every secret goes through -------------------------------------------------


def secret_value(env_name: str, *, vault_path: str | None = None, vault_field: str | None = None) -> str | None:
    """Vault KV v2 (VAULT_PATH, field VAULT_FIELD) when VAULT_ADDR is set, else ENV_NAME or ENV_NAME_FILE.

    Used for API keys (``AION_GATEWAY_API_KEYS``), hook secrets and JWT private
    keys alike, so rotation works the same way for each.
    """
    from aion import env

    if vault_enabled() and vault_path:
        data = read_kv(vault_path) or {}
        value = data.get(vault_field or env_name)
        if value is not None:
            return str(value)
    return env.raw(env_name)


def _read_kv_or_empty(path: str) -> dict[str, Any]:
    """Like read_kv, but a path that does not exist yet is empty (a sealed or unreachable Vault still raises)."""
    import hvac.exceptions

    try:
        return read_kv(path) or {}
    except SecretUnavailable as exc:
        if isinstance(exc.__cause__, hvac.exceptions.InvalidPath):
            return {}
        raise


def _key_file(name: str) -> Any:
    from pathlib import Path

    safe = "".join(ch for ch in name if ch.isalnum() or ch in "-_.")
    return Path(settings.AION_JWT_PRIVATE_KEY_DIR) / f"{safe}.pem"


def put_private_key(name: str, pem: str) -> None:
    """Stores a private key: in Vault (AION_JWT_VAULT_PATH, field NAME) or as a 0600 file."""
    import os

    if vault_enabled():
        write_kv(settings.AION_JWT_VAULT_PATH, {**_read_kv_or_empty(settings.AION_JWT_VAULT_PATH), name: pem})
        return
    path = _key_file(name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(pem)


def get_private_key(name: str) -> str | None:
    if vault_enabled():
        value = _read_kv_or_empty(settings.AION_JWT_VAULT_PATH).get(name)
        return str(value) if value is not None else None
    path = _key_file(name)
    return path.read_text() if path.exists() else None
