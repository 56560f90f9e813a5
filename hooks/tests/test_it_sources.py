"""Hook sources: AION_HOOK_SOURCES parsing, database secrets encrypted at rest, Vault KV v2, commands, API.

Fake: no Vault server can run here, so ``vault`` below is a KV v2 HTTP stand-in on the real local
HTTP server fixture (the two routes hvac uses: read and write of ``secret/data/omertaos/hooks``);
the real ``hvac`` client and ``aion.secrets`` talk to it over HTTP.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from aion.testing.factories import OTHER_TENANT, TENANT, api_client, client_with_roles
from aion.testing.hook_requests import ACME_SECRET, approval_body, post_hook, signed_headers, submit_proposal
from hooks.crypto import decrypt, encrypt
from hooks.models import HookSource, HookSourceSecret
from hooks.sources import SourceConfigError, parse_env_sources, sources_for_tenant


def test_env_sources_parse():
    chatops, other = parse_env_sources("chatops:acme:s3cr:et:kernel.approve|kernel.reject, ci:globex:x:kernel.reject")
    assert (chatops.name, chatops.tenant_id, chatops.secrets, chatops.scopes) == (
        "chatops", "acme", ("s3cr:et",), frozenset({"kernel.approve", "kernel.reject"}),
    )  # fmt: skip
    assert other.scopes == frozenset({"kernel.reject"}) and other.origin == "env"
    assert parse_env_sources("") == []
    with pytest.raises(SourceConfigError, match="entry 2"):
        parse_env_sources("a:acme:s:kernel.approve,broken")


@pytest.mark.django_db
def test_database_secrets_are_encrypted_at_rest(settings):
    settings.AION_ENCRYPTION_KEY = "an operator chosen passphrase"
    out = StringIO()
    call_command("hook_source_add", "--tenant", TENANT, "--name", "pager", "--scopes", "kernel.approve", stdout=out)
    secret = out.getvalue().strip().splitlines()[-1]
    assert secret.startswith("hksec_")
    row = HookSourceSecret.objects.get()
    assert secret not in row.secret_encrypted and decrypt(row.secret_encrypted) == secret
    # a different key cannot read it
    settings.AION_ENCRYPTION_KEY = "another key"
    from hooks.crypto import SecretDecryptionError

    with pytest.raises(SecretDecryptionError):
        decrypt(row.secret_encrypted)


@pytest.mark.django_db
def test_the_previous_encryption_key_still_decrypts(settings):
    settings.AION_ENCRYPTION_KEY = "old key"
    token = encrypt("hksec_x")
    settings.AION_ENCRYPTION_KEY = "new key"
    settings.AION_ENCRYPTION_KEY_PREVIOUS = "old key"
    assert decrypt(token) == "hksec_x"


@pytest.mark.django_db
def test_commands_add_and_rotate_and_the_rotated_secret_keeps_working(settings):
    settings.AION_HOOK_SOURCES = ""
    out = StringIO()
    call_command("hook_source_add", "--tenant", TENANT, "--name", "bot", "--scopes", "kernel.approve,kernel.reject", stdout=out)
    old = out.getvalue().strip().splitlines()[-1]
    out = StringIO()
    call_command("hook_source_rotate", "--tenant", TENANT, "--name", "bot", "--grace-hours", "1", stdout=out)
    new = out.getvalue().strip().splitlines()[-1]
    (source,) = sources_for_tenant(TENANT)
    assert source.secrets == (new, old)  # active first
    assert sources_for_tenant(TENANT, timezone.now() + timedelta(hours=2))[0].secrets == (new,)
    with pytest.raises(CommandError):
        call_command("hook_source_add", "--tenant", TENANT, "--name", "bot", "--scopes", "kernel.approve")
    with pytest.raises(CommandError):
        call_command("hook_source_add", "--tenant", TENANT, "--name", "x", "--scopes", "kernel.destroy")
    with pytest.raises(CommandError):
        call_command("hook_source_rotate", "--tenant", OTHER_TENANT, "--name", "bot")


@pytest.mark.django_db
def test_endpoint_rotate_and_recover_commands(http_server):
    from hooks.models import WebhookEndpoint
    from hooks.tests.helpers import make_endpoint

    endpoint, old = make_endpoint(http_server.url("/r"))
    out = StringIO()
    call_command("webhook_endpoint_rotate_secret", str(endpoint.pk), "--grace-hours", "2", stdout=out)
    new = out.getvalue().strip().splitlines()[-1]
    endpoint = WebhookEndpoint.objects.get()
    assert new.startswith("whsec_") and decrypt(endpoint.secret_encrypted) == new and decrypt(endpoint.previous_secret_encrypted) == old
    out = StringIO()
    call_command("webhook_recover", "--tenant", TENANT, "--since", "2020-01-01T00:00:00Z", stdout=out)
    assert "Recovered 0" in out.getvalue()


@pytest.mark.django_db
def test_a_disabled_source_cannot_sign(settings):
    settings.AION_HOOK_SOURCES = ""
    from aion.auth.principal import system_principal
    from hooks.services import create_hook_source, set_hook_source_enabled

    source, _secret = create_hook_source(tenant_id=TENANT, name="bot", scopes=["kernel.approve"], actor=system_principal(TENANT))
    set_hook_source_enabled(source, False, actor=system_principal(TENANT))
    assert sources_for_tenant(TENANT) == []


@pytest.fixture()
def vault(http_server: Any, settings: Any) -> dict[str, Any]:
    """A KV v2 stand-in (see the module docstring) holding the document at secret/omertaos/hooks."""
    store: dict[str, Any] = {"data": None, "version": 0}

    def handler(request: Any) -> tuple[int, Any, dict[str, str]]:
        if request.path != "/v1/secret/data/omertaos/hooks":
            return 404, {"errors": []}, {}
        if request.method == "GET":
            if store["data"] is None:
                return 404, {"errors": []}, {}
            return (
                200,
                {"data": {"data": store["data"], "metadata": {"version": store["version"], "deletion_time": "", "destroyed": False}}},
                {},
            )
        store["data"] = request.json()["data"]
        store["version"] += 1
        return 200, {"data": {"version": store["version"]}}, {}

    http_server.handler = handler
    settings.VAULT_ADDR = http_server.url("").rstrip("/")
    settings.VAULT_TOKEN = "test-token"
    settings.AION_HOOK_SOURCES = ""
    return store


@pytest.mark.django_db
def test_vault_sources_sign_inbound_hooks(vault, http_server):
    now = timezone.now()
    vault["data"] = {
        f"{TENANT}/chatops": json.dumps({"scopes": ["kernel.approve"], "secrets": [
            {"secret": "vault-new", "expires_at": None},
            {"secret": "vault-old", "expires_at": (now + timedelta(hours=1)).isoformat()},
            {"secret": "vault-expired", "expires_at": (now - timedelta(hours=1)).isoformat()},
        ]}),
        f"{OTHER_TENANT}/theirs": {"scopes": ["kernel.approve"], "secrets": ["globex-secret"]},
    }  # fmt: skip
    (source,) = sources_for_tenant(TENANT)
    assert source.origin == "vault" and source.secrets == ("vault-new", "vault-old")
    assert http_server.requests[0].headers["x-vault-token"] == "test-token"
    proposal = submit_proposal()
    body = approval_body(proposal.pk)
    assert post_hook(body, **signed_headers(body, secrets=["vault-expired"])).status_code == 401
    assert post_hook(body, **signed_headers(body, secrets=["vault-old"])).status_code == 200
    # the database is not consulted in Vault mode
    assert post_hook(body, **signed_headers(body, secrets=[ACME_SECRET])).status_code == 401


@pytest.mark.django_db
def test_commands_write_secrets_to_vault_when_configured(vault):
    out = StringIO()
    call_command("hook_source_add", "--tenant", TENANT, "--name", "pager", "--scopes", "kernel.reject", stdout=out)
    first = out.getvalue().strip().splitlines()[-1]
    assert not HookSourceSecret.objects.exists()  # nothing secret in the database
    entry = vault["data"][f"{TENANT}/pager"]
    assert entry["scopes"] == ["kernel.reject"] and entry["secrets"] == [{"secret": first, "expires_at": None}]
    out = StringIO()
    call_command("hook_source_rotate", "--tenant", TENANT, "--name", "pager", stdout=out)
    second = out.getvalue().strip().splitlines()[-1]
    secrets = vault["data"][f"{TENANT}/pager"]["secrets"]
    assert [s["secret"] for s in secrets] == [second, first] and secrets[1]["expires_at"] is not None
    assert sources_for_tenant(TENANT)[0].secrets == (second, first)


@pytest.mark.django_db
def test_vault_down_is_a_503_not_a_500(settings):
    from aion.testing.services import free_port

    settings.VAULT_ADDR = f"http://127.0.0.1:{free_port()}"
    settings.VAULT_TOKEN = "t"
    body = approval_body("00000000-0000-4000-8000-000000000000")
    response = post_hook(body, **signed_headers(body, secrets=["x"]))
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/problem+json")


@pytest.mark.django_db
def test_sources_api_and_negative_authorisation():
    owner = client_with_roles(["hooks.admin"])
    created = owner.post("/v1/hooks/sources", {"name": "pager", "scopes": ["kernel.approve"]}, format="json")
    assert created.status_code == 201 and created.json()["secret"].startswith("hksec_")
    pk = created.json()["id"]
    listed = owner.get("/v1/hooks/sources").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    assert len(listed["results"][0]["secret_fingerprints"]) == 1
    rotated = owner.post(f"/v1/hooks/sources/{pk}/rotate-secret", {"grace_hours": 1}, format="json")
    assert rotated.status_code == 200 and rotated.json()["secret"] != created.json()["secret"]
    assert len(rotated.json()["secret_fingerprints"]) == 2
    assert owner.patch(f"/v1/hooks/sources/{pk}", {"enabled": False}, format="json").json()["enabled"] is False
    assert owner.patch(f"/v1/hooks/sources/{pk}", {"enabled": "no"}, format="json").status_code == 400
    assert owner.post("/v1/hooks/sources", {"name": "pager", "scopes": ["kernel.approve"]}, format="json").status_code == 409
    assert owner.post("/v1/hooks/sources", {"name": "x y", "scopes": ["kernel.nope"]}, format="json").status_code == 400
    assert api_client().get("/v1/hooks/sources").status_code == 401
    assert client_with_roles(["kernel.admin"]).post("/v1/hooks/sources", {}, format="json").status_code == 403
    outsider = client_with_roles(["hooks.admin"], tenant=OTHER_TENANT)
    assert outsider.get(f"/v1/hooks/sources/{pk}").status_code == 404
    assert outsider.post(f"/v1/hooks/sources/{pk}/rotate-secret").status_code == 404
    assert HookSource.objects.get(pk=pk).secrets.count() == 2
