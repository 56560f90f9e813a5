"""Refused attempts to change state: an ``access.denied`` audit record, cheap and throttled.

An authenticated caller that tries an unsafe method (POST, PUT, PATCH, DELETE)
without the required role, or for a tenant its credential may not act for,
gets a 403 problem. ``record_denied()`` writes one ``AuditRecord`` (result
``denied``) for it, so auditors see who tried what. Two limits keep it cheap:

- the API's 403 path passes the rate limiter first (``RolePermission`` runs
  the view's throttles before refusing), so refusals spend the credential's
  budget like any other write;
- at most one record per credential, route, method and reason every
  ``AION_AUDIT_DENIED_INTERVAL_SECONDS`` (an atomic ``cache.add`` under the
  rate-limit key prefix); the rest only count in ``aion_access_denied_total``.

Safe methods are not recorded (reads leave no trail elsewhere either), nor
are 401s (no principal to name; ``auth_failures`` limits them per IP).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from prometheus_client import Counter

logger = logging.getLogger("aion.auth")

ACCESS_DENIED = Counter(
    "aion_access_denied_total", "Authenticated state-changing requests refused (missing role or foreign tenant)", ["reason", "method"]
)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def route_of(request: Any) -> str:
    """The URL pattern name (or route), never the raw path: ids do not multiply the throttle keys."""
    django_request = getattr(request, "_request", request)
    match = getattr(django_request, "resolver_match", None)
    if match is not None:
        return str(match.view_name or match.route or django_request.path)
    return str(getattr(django_request, "path", ""))


def _first_in_interval(credential: str, route: str, method: str, reason: str) -> bool:
    interval = settings.AION_AUDIT_DENIED_INTERVAL_SECONDS
    if interval == 0:
        return True
    digest = hashlib.sha256(f"{credential}\n{route}\n{method}\n{reason}".encode()).hexdigest()[:32]
    return bool(cache.add(f"{settings.AION_RATE_LIMIT_KEY_PREFIX}:denied:{digest}", 1, timeout=interval))


def record_denied(request: Any, principal: Any, reason: str, **details: Any) -> None:
    """Audits one refused unsafe request (best effort: a failure here never changes the 403)."""
    method = str(getattr(request, "method", "") or "").upper()
    if method not in UNSAFE_METHODS or principal is None or not getattr(principal, "is_authenticated", False):
        return
    ACCESS_DENIED.labels(reason, method).inc()
    route = route_of(request)
    credential = f"{getattr(principal, 'subject', principal)}|{getattr(principal, 'credential_id', None) or ''}"
    try:
        if not _first_in_interval(credential, route, method, reason):
            return
        from aion import audit
        from aion.models import AuditResult

        django_request = getattr(request, "_request", request)
        with transaction.atomic():
            audit.record(
                "access.denied",
                "route",
                route,
                actor=principal,
                tenant_id=str(getattr(principal, "tenant_id", "") or ""),
                result=AuditResult.DENIED,
                metadata={"reason": reason, "method": method, "path": str(getattr(django_request, "path", ""))[:500], **details},
            )
    except Exception as exc:  # noqa: BLE001 - the refusal stands whether or not it could be recorded
        logger.warning("could not audit a refused request", extra={"error": f"{type(exc).__name__}: {exc}", "reason": reason})
