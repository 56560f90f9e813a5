"""Trusted Cosign keys from Vault KV v2 (``secret/omertaos/cosign``), beside AION_COSIGN_PUBLIC_KEYS.

Fake: no Vault server can run here, so Vault is a KV v2 HTTP stand-in on a real local HTTP server
(the real ``hvac`` client talks to it through ``aion.secrets.read_kv``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from aion.testing.module_releases import build_manifest
from modules.choices import SignatureFailure
from modules.signing import SignatureRejected, verify_manifest
from modules.trust import load_keyring


@pytest.fixture()
def vault(http_server: Any, settings: Any) -> dict[str, Any]:
    store: dict[str, Any] = {"data": {}}

    def handler(request: Any) -> tuple[int, Any, dict[str, str]]:
        if request.path != "/v1/secret/data/omertaos/cosign":
            return 404, {"errors": []}, {}
        if store["data"] is None:
            return 503, {"errors": ["sealed"]}, {}
        metadata = {"version": 1, "deletion_time": "", "destroyed": False}
        return 200, {"data": {"data": store["data"], "metadata": metadata}}, {}

    http_server.handler = handler
    settings.VAULT_ADDR = http_server.url("").rstrip("/")
    settings.VAULT_TOKEN = "test-token"
    return store


def test_vault_keys_verify_and_retire(keys, vault, http_server):
    env_key = keys.new("env-key")
    vault_key = keys.new("vault-key", trusted=False)
    retired = keys.new("vault-old", trusted=False)
    vault["data"] = {
        "vault-key": vault_key.pem_path.read_text(),
        "vault-old": json.dumps({"pem": retired.pem_path.read_text(), "not_after": "2020-01-01"}),
    }
    ring = load_keyring()
    assert sorted((k.key_id, k.source.split(":")[0], k.state()) for k in ring.keys) == [
        ("env-key", "env", "active"),
        ("vault-key", "vault", "active"),
        ("vault-old", "vault", "retired"),
    ]
    assert http_server.requests[0].headers["x-vault-token"] == "test-token"
    assert verify_manifest(build_manifest(vault_key)).key_id == "vault-key"
    assert verify_manifest(build_manifest(env_key)).key_id == "env-key"
    with pytest.raises(SignatureRejected) as caught:
        verify_manifest(build_manifest(retired))
    assert caught.value.reason == SignatureFailure.RETIRED_KEY


def test_an_unreachable_vault_is_reported_and_env_keys_still_work(keys, vault):
    env_key = keys.new("env-key")
    vault["data"] = None
    ring = load_keyring()
    assert [k.key_id for k in ring.keys] == ["env-key"]
    assert ring.errors and "Vault" in ring.errors[0]
    assert verify_manifest(build_manifest(env_key), keyring=ring).key_id == "env-key"
