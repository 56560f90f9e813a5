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
