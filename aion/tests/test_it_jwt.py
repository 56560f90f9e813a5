"""Bearer JWTs: RS256/ES256 by kid, publish-before-use, retirement, exp/nbf/iss/aud, tenant claim, the JWKS endpoint."""

from __future__ import annotations

import time

import jwt as pyjwt
import pytest
from django.core.management import call_command
from django.test import Client, override_settings

from aion.auth import jwt as aion_jwt
from aion.roles import Role
from aion.secrets import get_private_key
from aion.testing.factories import OTHER_TENANT, TENANT, api_client

pytestmark = pytest.mark.django_db


@pytest.fixture()
def keystore(tmp_path, gateway_isolation):
    with override_settings(AION_JWKS_PATH=str(tmp_path / "jwks.json"), AION_JWT_PRIVATE_KEY_DIR=str(tmp_path / "keys"), AION_JWT_JWKS=""):
        yield tmp_path


def bearer(token):
    return api_client(HTTP_AUTHORIZATION=f"Bearer {token}")


def claims(**overrides):
    now = int(time.time())
    base = {
        "iss": "aion-control",
        "aud": "aion-api",
        "sub": "svc-router",
        "tenant_id": TENANT,
        "roles": ["auditor"],
        "iat": now,
        "exp": now + 600,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def signed(kid, **overrides):
    pem = get_private_key(f"jwt-{kid}")
    alg = next(k["alg"] for k in aion_jwt.read_jwks_file()["keys"] if k["kid"] == kid)
    return pyjwt.encode(claims(**overrides), pem, algorithm=alg, headers={"kid": kid})


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_valid_tokens_of_both_algorithms(keystore, alg):
    kid = aion_jwt.generate_signing_key(alg)
    token = aion_jwt.mint_token("svc-router", [Role.AUDITOR], TENANT, ttl_seconds=300)
    assert pyjwt.get_unverified_header(token)["kid"] == kid
    response = bearer(token).get("/v1/whoami")
    assert response.status_code == 200
    assert response.json() == {"subject": "jwt:svc-router", "kind": "jwt", "tenant_id": TENANT, "roles": ["auditor"]}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "evil"}, "issuer"),
        ({"tenant_id": None}, "tenant_id"),
        ({"exp": None}, "invalid"),
    ],
)
def test_bad_claims_get_401(keystore, overrides, reason):
    kid = aion_jwt.generate_signing_key("ES256")
    response = bearer(signed(kid, **overrides)).get("/v1/whoami")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")
    assert reason in response.json()["detail"]


def test_unknown_kid_tampered_and_foreign_tokens_get_401(keystore):
    kid = aion_jwt.generate_signing_key("ES256")
    good = signed(kid)
    assert bearer(good).get("/v1/whoami").status_code == 200
    # A kid nobody published
    from cryptography.hazmat.primitives.asymmetric import ec

    stranger = ec.generate_private_key(ec.SECP256R1())
    forged = pyjwt.encode(claims(), stranger, algorithm="ES256", headers={"kid": "no-such-kid"})
    assert "kid" in bearer(forged).get("/v1/whoami").json()["detail"]
    # Signed by a stranger under a real kid
    assert bearer(pyjwt.encode(claims(), stranger, algorithm="ES256", headers={"kid": kid})).get("/v1/whoami").status_code == 401
    # Payload edited after signing (roles escalated)
    head, _body, sig = good.split(".")
    evil_body = pyjwt.utils.base64url_encode(b'{"sub":"x","roles":["kernel.admin"],"tenant_id":"acme"}').decode()
    assert bearer(f"{head}.{evil_body}.{sig}").get("/v1/whoami").status_code == 401
    # HS256 "confusion" and garbage
    assert bearer(pyjwt.encode(claims(), "secret", algorithm="HS256", headers={"kid": kid})).get("/v1/whoami").status_code == 401
    assert bearer("not-a-token").get("/v1/whoami").status_code == 401


def test_publish_before_use_then_retire(keystore):
    old = aion_jwt.generate_signing_key("ES256")
    new = aion_jwt.generate_signing_key("RS256", make_current=False)  # published, not yet signing
    published = {k["kid"] for k in Client().get("/.well-known/jwks.json").json()["keys"]}
    assert published == {old, new}
    assert pyjwt.get_unverified_header(aion_jwt.mint_token("svc", [], TENANT))["kid"] == old
    # Tokens signed with the new key are accepted as soon as they appear.
    assert bearer(signed(new)).get("/v1/whoami").status_code == 200

    aion_jwt.set_signing_key(new)
    old_token = signed(old)
    aion_jwt.retire_key(old)
    response = bearer(old_token).get("/v1/whoami")
    assert response.status_code == 401
    assert "retired" in response.json()["detail"]
    assert bearer(signed(new)).get("/v1/whoami").status_code == 200
    jwks = Client().get("/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in jwks] == [new]
    assert all("d" not in k and "p" not in k for k in jwks)  # never private material


def test_keys_from_the_environment_jwks(keystore, tmp_path):
    kid = aion_jwt.generate_signing_key("ES256")
    document = aion_jwt.read_jwks_file()
    token = signed(kid)
    (tmp_path / "jwks.json").unlink()
    import json

    with override_settings(AION_JWT_JWKS=json.dumps({"keys": document["keys"]})):
        assert bearer(token).get("/v1/whoami").status_code == 200
    assert bearer(token).get("/v1/whoami").status_code == 401


def test_tenant_header_cannot_override_the_token(keystore):
    kid = aion_jwt.generate_signing_key("ES256")
    token = signed(kid)
    same = api_client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT_ID=TENANT).get("/v1/whoami")
    assert same.status_code == 200
    other = api_client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_TENANT_ID=OTHER_TENANT).get("/v1/whoami")
    assert other.status_code == 403
    assert other.json()["type"] == "urn:aion:problem:tenant-mismatch"


def test_commands_generate_mint_retire(keystore, capsys):
    call_command("jwt_generate_key", "--alg", "ES256")
    kid = capsys.readouterr().out.strip().splitlines()[-1]
    call_command("jwt_mint", "--sub", "svc-kernel", "--tenant", TENANT, "--roles", "kernel.proposer", "--ttl", "120")
    token = capsys.readouterr().out.strip()
    assert bearer(token).get("/v1/whoami").json()["roles"] == ["kernel.proposer"]
    call_command("jwt_generate_key", "--alg", "RS256", "--publish-only")
    new_kid = capsys.readouterr().out.strip().splitlines()[-1]
    call_command("jwt_activate", new_kid)
    call_command("jwt_retire", kid)
    capsys.readouterr()
    assert bearer(token).get("/v1/whoami").status_code == 401
    call_command("jwt_mint", "--sub", "svc-kernel", "--tenant", TENANT)
    assert pyjwt.get_unverified_header(capsys.readouterr().out.strip())["kid"] == new_kid
    # private keys are files only the owner can read
    mode = (keystore / "keys" / f"jwt-{new_kid}.pem").stat().st_mode & 0o777
    assert mode == 0o600
