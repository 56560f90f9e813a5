"""Secrets from Vault KV v2 through the one shared path (aion.secrets): API keys and JWT private keys.

Fake: no Vault server can run here, so Vault is a KV v2 HTTP stand-in on a real
local HTTP server; the real ``hvac`` client talks to it.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from aion.auth import jwt as aion_jwt
from aion.auth import keys
from aion.secrets import SecretUnavailable, secret_value
from aion.testing.factories import TENANT, api_client

pytestmark = pytest.mark.django_db


@pytest.fixture()
def vault(http_server: Any, settings: Any, tmp_path: Any) -> dict[str, Any]:
    store: dict[str, Any] = {"paths": {}, "sealed": False}

    def handler(request: Any) -> tuple[int, Any, dict[str, str]]:
        if store["sealed"]:
            return 503, {"errors": ["Vault is sealed"]}, {}
        if request.headers.get("x-vault-token") != "test-token":
            return 403, {"errors": ["permission denied"]}, {}
        prefix = "/v1/secret/data/"
        if not request.path.startswith(prefix):
            return 404, {"errors": []}, {}
        path = request.path[len(prefix) :]
        metadata = {"version": 1, "deletion_time": "", "destroyed": False, "created_time": "2026-01-01T00:00:00Z"}
        if request.method in ("POST", "PUT"):
            store["paths"][path] = request.json()["data"]
            return 200, {"data": metadata}, {}
        if path not in store["paths"]:
            return 404, {"errors": []}, {}
        return 200, {"data": {"data": store["paths"][path], "metadata": metadata}}, {}

    http_server.handler = handler
    settings.VAULT_ADDR = http_server.url("").rstrip("/")
    settings.VAULT_TOKEN = "test-token"
    settings.AION_JWKS_PATH = str(tmp_path / "jwks.json")
    settings.AION_JWT_PRIVATE_KEY_DIR = str(tmp_path / "keys")
    yield store
    keys.reload_env_keys("")


def test_api_keys_come_from_vault_and_reload_on_sighup(vault):
    vault["paths"]["omertaos/gateway"] = {"api_keys": f"vault-key-0123456789abcdef:auditor:{TENANT}"}
    assert keys.reload_env_keys_safely()
    assert api_client("vault-key-0123456789abcdef").get("/v1/whoami").status_code == 200

    # Rotation in Vault: new key added, old removed; SIGHUP picks it up without a restart.
    vault["paths"]["omertaos/gateway"] = {"api_keys": f"vault-key-new-0123456789ab:auditor:{TENANT}"}
    os.kill(os.getpid(), signal.SIGHUP)
    assert api_client("vault-key-new-0123456789ab").get("/v1/whoami").status_code == 200
    assert api_client("vault-key-0123456789abcdef").get("/v1/whoami").status_code == 401


def test_sealed_vault_keeps_the_current_keys(vault):
    vault["paths"]["omertaos/gateway"] = {"api_keys": f"vault-key-0123456789abcdef:auditor:{TENANT}"}
    keys.reload_env_keys()
    vault["sealed"] = True
    with pytest.raises(SecretUnavailable):
        secret_value("AION_GATEWAY_API_KEYS", vault_path="omertaos/gateway", vault_field="api_keys")
    assert keys.reload_env_keys_safely() is False
    assert api_client("vault-key-0123456789abcdef").get("/v1/whoami").status_code == 200


def test_jwt_private_keys_live_in_vault_not_on_disk(vault, tmp_path):
    kid = aion_jwt.generate_signing_key("ES256")
    assert "BEGIN PRIVATE KEY" in vault["paths"]["omertaos/jwt"][f"jwt-{kid}"]
    assert not (tmp_path / "keys").exists()
    jwks = json.loads((tmp_path / "jwks.json").read_text())
    assert all("d" not in k for k in jwks["keys"])
    token = aion_jwt.mint_token("svc", ["auditor"], TENANT)
    assert api_client(HTTP_AUTHORIZATION=f"Bearer {token}").get("/v1/whoami").status_code == 200
