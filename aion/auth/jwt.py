"""JWTs: RS256/ES256 verification against public keys chosen by ``kid``, signing keys, minting.

Public keys come from the JWKS file at ``AION_JWKS_PATH`` (managed by the
``jwt_generate_key`` / ``jwt_retire`` commands) plus any JWKS in the
``AION_JWT_JWKS`` variable (e.g. an external issuer's keys). Each key has a
``status``: ``active`` keys are accepted and published at
``/.well-known/jwks.json``; ``retired`` keys are neither, so tokens signed
with them get 401 even while they are still arriving. A key can be published
(``--publish-only``) before anything is signed with it. The file's
``signing_kid`` names the key ``jwt_mint`` signs with.

Private keys never enter the JWKS: they live in Vault (``AION_JWT_VAULT_PATH``,
one entry per kid) when VAULT_ADDR is set, else as 0600 PEM files under
``AION_JWT_PRIVATE_KEY_DIR`` (see ``aion.secrets``).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import AuthenticationFailed

from aion.auth.principal import Principal
from aion.roles import ALL_ROLES

ALGORITHMS = ["RS256", "ES256"]
_KTY_FOR_ALG = {"RS256": "RSA", "ES256": "EC"}
ACTIVE, RETIRED = "active", "retired"
PUBLIC_FIELDS = ("kty", "kid", "use", "alg", "n", "e", "crv", "x", "y")

_cache_lock = threading.Lock()
_cache: dict[str, Any] = {"key": None, "value": None}


# --- The JWKS document ----------------------------------------------------------------------


def jwks_path() -> Path:
    return Path(settings.AION_JWKS_PATH)


def read_jwks_file() -> dict[str, Any]:
    path = jwks_path()
    if not path.exists():
        return {"keys": []}
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"AION_JWKS_PATH={path} is not a readable JWKS: {exc}") from exc
    document.setdefault("keys", [])
    return dict(document)


def write_jwks_file(document: dict[str, Any]) -> None:
    """Atomic replace, so verifiers never read half a file."""
    path = jwks_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True))
    os.replace(temporary, path)


def load_jwks() -> dict[str, Any]:
    """File keys plus AION_JWT_JWKS keys, cached until the file changes."""
    path = jwks_path()
    try:
        stamp = path.stat().st_mtime_ns
    except FileNotFoundError:
        stamp = None
    cache_key = (str(path), stamp, settings.AION_JWT_JWKS)
    with _cache_lock:
        if _cache["key"] == cache_key:
            return dict(_cache["value"])
    document = read_jwks_file()
    if settings.AION_JWT_JWKS:
        try:
            extra = json.loads(settings.AION_JWT_JWKS)
        except ValueError as exc:
            raise ImproperlyConfigured(f"AION_JWT_JWKS is not JSON: {exc}") from exc
        document["keys"] = list(document["keys"]) + list(extra.get("keys", []))
    with _cache_lock:
        _cache["key"], _cache["value"] = cache_key, document
    return dict(document)


def active_public_keys() -> list[dict[str, Any]]:
    return [
        {k: v for k, v in jwk.items() if k in PUBLIC_FIELDS} for jwk in load_jwks().get("keys", []) if jwk.get("status", ACTIVE) == ACTIVE
    ]


def public_key_for(kid: str) -> tuple[Any, str] | None:
    """(verification key, algorithm) of an active kid, else None."""
    for jwk in load_jwks().get("keys", []):
        if jwk.get("kid") == kid and jwk.get("status", ACTIVE) == ACTIVE:
            alg = str(jwk.get("alg") or ("RS256" if jwk.get("kty") == "RSA" else "ES256"))
            if alg not in ALGORITHMS:
                return None
            return jwt.PyJWK({k: v for k, v in jwk.items() if k in PUBLIC_FIELDS}, algorithm=alg).key, alg
    return None


# --- Verification ---------------------------------------------------------------------------


def principal_for_token(token: str) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed("The bearer token is malformed.") from exc
    kid = str(header.get("kid", ""))
    found = public_key_for(kid) if kid else None
    if found is None:
        raise AuthenticationFailed("The bearer token's kid is unknown or retired.")
    key, alg = found
    if header.get("alg") != alg:
        raise AuthenticationFailed("The bearer token's algorithm does not match its key.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.AION_JWT_AUDIENCE,
            issuer=settings.AION_JWT_ISSUER,
            leeway=settings.AION_JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "iss", "aud"], "verify_nbf": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("The bearer token has expired.") from exc
    except jwt.ImmatureSignatureError as exc:
        raise AuthenticationFailed("The bearer token is not valid yet (nbf).") from exc
    except jwt.InvalidAudienceError as exc:
        raise AuthenticationFailed("The bearer token is for another audience.") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthenticationFailed("The bearer token comes from an unknown issuer.") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed(f"The bearer token is invalid: {exc}") from exc
    tenant = claims.get("tenant_id")
    if not isinstance(tenant, str) or not tenant:
        raise AuthenticationFailed("The bearer token carries no tenant_id.")
    raw_roles = claims.get("roles", [])
    roles = frozenset(r for r in raw_roles if isinstance(r, str) and r in ALL_ROLES) if isinstance(raw_roles, list) else frozenset()
    return Principal(
        kind="jwt",
        subject=f"jwt:{claims['sub']}",
        tenant_id=tenant,
        roles=roles,
        allowed_tenants=frozenset({tenant}),
        credential_id=f"jwt:{kid}:{claims.get('jti', '')}",
    )


# --- Signing keys (management commands) -----------------------------------------------------


def _private_secret_name(kid: str) -> str:
    return f"jwt-{kid}"


def generate_signing_key(alg: str = "ES256", *, make_current: bool = True) -> str:
    """A new key pair: the private half to the secret store, the public half into the JWKS file. Returns the kid."""
    from aion.secrets import put_private_key

    if alg not in ALGORITHMS:
        raise ValueError(f"alg must be one of {ALGORITHMS}")
    private: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=3072) if alg == "RS256" else ec.generate_private_key(ec.SECP256R1())
    )
    kid = f"{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    put_private_key(_private_secret_name(kid), pem)
    jwk = _public_jwk(private, alg)
    jwk.update({"kid": kid, "alg": alg, "use": "sig", "status": ACTIVE, "created_at": int(time.time())})
    document = read_jwks_file()
    document["keys"] = [*document["keys"], jwk]
    if make_current or not document.get("signing_kid"):
        document["signing_kid"] = kid
    write_jwks_file(document)
    return kid


def _public_jwk(private: Any, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    return json.loads(algorithm.to_jwk(private.public_key()))  # type: ignore[no-any-return]


def set_signing_key(kid: str) -> None:
    document = read_jwks_file()
    if not any(k.get("kid") == kid and k.get("status", ACTIVE) == ACTIVE for k in document["keys"]):
        raise ValueError(f"kid {kid!r} is not an active key in {jwks_path()}")
    document["signing_kid"] = kid
    write_jwks_file(document)


def retire_key(kid: str) -> None:
    """Stops accepting and publishing KID (tokens signed with it get 401 from now on)."""
    document = read_jwks_file()
    found = False
    for jwk in document["keys"]:
        if jwk.get("kid") == kid:
            jwk["status"] = RETIRED
            jwk["retired_at"] = int(time.time())
            found = True
    if not found:
        raise ValueError(f"kid {kid!r} is not in {jwks_path()}")
    if document.get("signing_kid") == kid:
        document["signing_kid"] = None
    write_jwks_file(document)


def mint_token(subject: str, roles: list[str], tenant_id: str, *, ttl_seconds: int | None = None, kid: str | None = None) -> str:
    """A service-account token signed with the current (or the named) key."""
    from aion.secrets import get_private_key

    unknown = set(roles) - ALL_ROLES
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    document = read_jwks_file()
    kid = kid or document.get("signing_kid")
    if not kid:
        raise ValueError("no signing key: run `manage.py jwt_generate_key` first")
    jwk = next((k for k in document["keys"] if k.get("kid") == kid), None)
    if jwk is None or jwk.get("status", ACTIVE) != ACTIVE:
        raise ValueError(f"kid {kid!r} is not an active key")
    pem = get_private_key(_private_secret_name(kid))
    if pem is None:
        raise ValueError(f"the private key for kid {kid!r} is not in the secret store")
    now = int(time.time())
    claims = {
        "iss": settings.AION_JWT_ISSUER,
        "aud": settings.AION_JWT_AUDIENCE,
        "sub": subject,
        "tenant_id": tenant_id,
        "roles": sorted(roles),
        "iat": now,
        "nbf": now,
        "exp": now + (ttl_seconds or settings.AION_JWT_DEFAULT_TTL_SECONDS),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, pem, algorithm=str(jwk["alg"]), headers={"kid": kid})
