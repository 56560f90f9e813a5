"""JWT verification against public keys chosen by ``kid`` (RS256/ES256)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
from django.conf import settings
from rest_framework.exceptions import AuthenticationFailed

from aion.auth.principal import Principal

ALGORITHMS = ["RS256", "ES256"]


def load_jwks() -> dict[str, Any]:
    path = Path(settings.AION_JWKS_PATH)
    if not path.exists():
        return {"keys": []}
    return json.loads(path.read_text())


def public_key_for(kid: str) -> Any:
    for jwk in load_jwks().get("keys", []):
        if jwk.get("kid") == kid and jwk.get("status", "active") == "active":
            return jwt.PyJWK(jwk).key
    return None


def principal_for_token(token: str) -> Principal:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed("The bearer token is malformed.") from exc
    key = public_key_for(str(header.get("kid", "")))
    if key is None:
        raise AuthenticationFailed("The bearer token's kid is unknown or retired.")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=settings.AION_JWT_AUDIENCE,
            issuer=settings.AION_JWT_ISSUER,
            leeway=settings.AION_JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "iss", "aud"]},
        )
    except jwt.PyJWTError as exc:
        raise AuthenticationFailed(f"The bearer token is invalid: {exc}") from exc
    tenant = str(claims.get("tenant_id") or settings.AION_DEFAULT_TENANT)
    return Principal(
        kind="jwt",
        subject=f"jwt:{claims['sub']}",
        tenant_id=tenant,
        roles=frozenset(str(r) for r in claims.get("roles", []) if isinstance(r, str)),
        allowed_tenants=frozenset({tenant}),
        credential_id=f"jwt:{header.get('kid')}:{claims.get('jti', '')}",
    )
