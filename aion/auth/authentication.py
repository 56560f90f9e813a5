"""DRF authentication classes: ``x-api-key``, ``Authorization: Bearer <JWT>`` and Console sessions.

Each resolves a ``Principal``. ``x-tenant-id`` may only select a tenant the
credential allows; it never overrides the credential (403 problem otherwise).
Failed credentials are counted per client IP (route class ``auth_failures``)
so guessing keys is throttled too.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed

from aion.auth import jwt as aion_jwt
from aion.auth.denials import record_denied
from aion.auth.keys import cache_principal, cached_principal, find_env_key, hash_key
from aion.auth.principal import Principal, principal_for_user
from aion.problems import Problem


def apply_tenant_header(request: Any, principal: Principal) -> Principal:
    wanted = request.META.get("HTTP_X_TENANT_ID")
    if not wanted or wanted == principal.tenant_id:
        return principal
    if wanted in principal.allowed_tenants:
        return principal.with_tenant(wanted)
    if not getattr(getattr(request, "_request", request), "aion_preauthenticating", False):  # the view's own pass records it
        record_denied(request, principal, "tenant_mismatch", requested_tenant=str(wanted)[:64])
    raise Problem(403, "x-tenant-id names a tenant this credential may not act for.", slug="tenant-mismatch")


def count_failure(request: Any) -> None:
    """One failed credential from this IP; 429 once the IP exceeds the auth_failures rate (fail closed)."""
    from aion import ratelimit

    if getattr(getattr(request, "_request", request), "aion_preauthenticating", False):
        return  # the idempotency middleware's look-ahead; the view's own authentication counts it once
    try:
        decision = ratelimit.check("auth_failures", None, ratelimit.client_ip(request))
    except ratelimit.LimiterUnavailable as exc:
        raise ratelimit.unavailable_problem("auth_failures") from exc
    if not decision.allowed:
        ratelimit.RATE_LIMIT_REJECTIONS.labels("auth_failures", "limit").inc()
        _record_lockout(request, decision)
        raise Problem(429, "Too many failed credentials from this address.", slug="rate-limited", headers=decision.headers())


def _record_lockout(request: Any, decision: Any) -> None:
    """One ``auth_failure`` incident per lockout of an address (not per refused request), under the platform
    tenant: no credential verified, so the x-tenant-id it sent is only ``claimed_tenant``. Best effort: the 429 stands."""
    import ipaddress
    import logging

    from aion import ratelimit
    from aion.incidents import record_incident_once
    from aion.models import IncidentKind

    ip = ratelimit.client_ip(request)
    try:
        stored_ip: str | None = str(ipaddress.ip_address(ip))
    except ValueError:
        stored_ip = None
    meta = request.META
    try:
        record_incident_once(
            ip, decision.reset_seconds, IncidentKind.AUTH_FAILURE, "too_many_failed_credentials",
            claimed_tenant=str(meta.get("HTTP_X_TENANT_ID", ""))[:64], source_ip=stored_ip,
            details={"path": str(getattr(request, "path", ""))[:500], "user_agent": str(meta.get("HTTP_USER_AGENT", ""))[:200],
                     "limit": decision.limit, "retry_after_seconds": decision.retry_after_seconds},
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - recording must not turn the 429 into a 500
        logging.getLogger("aion.auth").warning("could not record an auth failure incident", extra={"error": f"{type(exc).__name__}: {exc}"})


class ApiKeyAuthentication(BaseAuthentication):
    header = "HTTP_X_API_KEY"

    def authenticate(self, request: Any) -> tuple[Principal, Any] | None:
        raw = request.META.get(self.header)
        if raw is None:
            return None
        principal = self.principal_for_key(raw)
        if principal is None:
            count_failure(request)
            raise AuthenticationFailed("The API key is unknown, expired or revoked.")
        return apply_tenant_header(request, principal), principal.credential_id

    def authenticate_header(self, request: Any) -> str:
        return 'ApiKey header="x-api-key"'

    @staticmethod
    def principal_for_key(raw: str) -> Principal | None:
        from aion.models import ApiKey

        env_key = find_env_key(raw)
        if env_key is not None:
            return Principal(
                kind="api_key",
                subject=f"key:{env_key.prefix}",
                tenant_id=env_key.tenant_id,
                roles=env_key.roles,
                allowed_tenants=frozenset({env_key.tenant_id}),
                credential_id=f"env:{env_key.key_hash[:16]}",
            )
        digest = hash_key(raw)
        cached = cached_principal(digest)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        key = ApiKey.objects.filter(key_hash=digest).first()
        now = timezone.now()
        if key is None or not key.is_active(now):
            return None
        # Cheap conditional update: at most one write per key per minute (on a cache miss).
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        principal = Principal(
            kind="api_key",
            subject=f"key:{key.prefix}",
            tenant_id=key.tenant_id,
            roles=frozenset(key.roles),
            allowed_tenants=frozenset({key.tenant_id}),
            credential_id=f"db:{key.pk}",
            host=key.host,
            pool=key.pool,
        )
        ends = [t for t in (key.expires_at, key.revoked_at) if t is not None]
        cache_principal(digest, principal, settings.AION_API_KEY_CACHE_SECONDS, min(ends) if ends else None)
        return principal


class JWTAuthentication(BaseAuthentication):
    """``Authorization: Bearer <JWT>`` (RS256/ES256, key chosen by kid); see ``aion.auth.jwt``."""

    def authenticate(self, request: Any) -> tuple[Principal, Any] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("bearer "):
            return None
        try:
            principal = aion_jwt.principal_for_token(header[7:].strip())
        except AuthenticationFailed:
            count_failure(request)
            raise
        return apply_tenant_header(request, principal), principal.credential_id

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="aion"'


class ConsoleSessionAuthentication(SessionAuthentication):
    """Console users calling the API from the browser (CSRF enforced)."""

    def authenticate(self, request: Any) -> tuple[Principal, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        return apply_tenant_header(request, principal_for_user(user)), None
