"""Security incidents, every action in one place: record (audited, published, counted), acknowledge, who sees which.

Kinds are ``aion.models.IncidentKind``. An incident belongs to the tenant of a *verified* credential or
source; an unauthenticated or unknown-tenant request is filed under ``AION_PLATFORM_TENANT`` (the tenant
it claimed goes into ``details["claimed_tenant"]``), so nobody can write into another tenant's incident
list by naming it. Platform admins (principals allowed to act for the platform tenant) see those too.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from prometheus_client import Counter

from aion import audit
from aion.context import current_request_id
from aion.errors import InvalidInput
from aion.models import AuditResult, IncidentKind, IncidentState, SecurityIncident
from aion.outbox import actor_name, publish
from aion.redaction import redact
from aion.topics import SECURITY_INCIDENTS

SECURITY_INCIDENTS_TOTAL = Counter("aion_security_incidents_total", "Security incidents recorded", ["kind", "reason"])

MAX_NOTE = 2000
RESOURCE_TYPE = "security_incident"


def platform_tenant() -> str:
    return str(settings.AION_PLATFORM_TENANT)


def record_incident(
    kind: str,
    reason: str,
    *,
    tenant_id: str = "",
    claimed_tenant: str = "",
    source_ip: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    details: dict[str, Any] | None = None,
    actor: Any = None,
) -> SecurityIncident:
    """Store, audit, publish and count one incident.

    TENANT_ID must come from a verified credential or source; leave it empty otherwise (the platform
    tenant gets it) and pass what the request claimed as CLAIMED_TENANT.
    """
    kind = IncidentKind(kind).value  # an unknown kind is a programming error, not a new kind
    tenant_id = tenant_id or platform_tenant()
    details = dict(details or {})
    if claimed_tenant and claimed_tenant != tenant_id:
        details["claimed_tenant"] = str(claimed_tenant)[:200]
    with transaction.atomic():
        incident = SecurityIncident.objects.create(
            tenant_id=tenant_id,
            kind=kind,
            reason=reason,
            source_ip=source_ip,
            headers=redact(dict(headers or {})),
            body_sha256=hashlib.sha256(body).hexdigest() if body is not None else "",
            details=redact(details),
            request_id=current_request_id() or "",
        )
        audit.record(
            f"{kind}.verification_failed",
            RESOURCE_TYPE,
            incident.pk,
            actor=actor or f"ip:{source_ip or 'unknown'}",
            tenant_id=tenant_id,
            after={"kind": kind, "reason": reason, "source_ip": source_ip, "state": incident.state},
            result=AuditResult.DENIED,
        )
        publish(
            SECURITY_INCIDENTS,
            tenant_id,
            {
                "incident_id": incident.pk,
                "kind": kind,
                "reason": reason,
                "state": incident.state,
                "source_ip": source_ip,
                "body_sha256": incident.body_sha256,
            },
            event_type="security.incident",
            tenant_id=tenant_id,
            actor=actor,
        )
    SECURITY_INCIDENTS_TOTAL.labels(kind, reason).inc()
    return incident


def record_incident_once(dedupe: str, ttl_seconds: int, kind: str, reason: str, **fields: Any) -> SecurityIncident | None:
    """``record_incident`` unless DEDUPE was recorded in the last TTL_SECONDS (one incident per lockout or
    replayed delivery, not one per request). Best effort: with the cache down every occurrence is recorded."""
    digest = hashlib.sha256(f"{kind}\n{dedupe}".encode()).hexdigest()[:32]
    try:
        first = bool(cache.add(f"{settings.AION_RATE_LIMIT_KEY_PREFIX}:incident:{digest}", 1, timeout=max(1, ttl_seconds)))
    except Exception:  # noqa: BLE001 - a lost dedupe means an extra incident, never a lost one
        first = True
    return record_incident(kind, reason, **fields) if first else None


def is_platform_admin(principal: Any) -> bool:
    """A principal allowed to act for the platform tenant (its key's or user's tenants include it)."""
    tenants = set(getattr(principal, "allowed_tenants", ()) or ()) | {getattr(principal, "tenant_id", "")}
    return platform_tenant() in tenants


def visible_tenants(principal: Any) -> list[str]:
    """The caller's tenant, plus the platform tenant for platform admins."""
    tenants = [str(principal.tenant_id)]
    if is_platform_admin(principal) and platform_tenant() not in tenants:
        tenants.append(platform_tenant())
    return tenants


def visible_incidents(principal: Any) -> QuerySet[SecurityIncident]:
    return SecurityIncident.objects.filter(tenant_id__in=visible_tenants(principal)).order_by("-created_at", "-id")


def _ack_state(incident: SecurityIncident) -> dict[str, Any]:
    return {
        "state": incident.state,
        "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
        "acknowledged_by": incident.acknowledged_by,
        "note": incident.note,
    }


class InvalidNote(InvalidInput):
    """The acknowledgement note is empty or longer than MAX_NOTE."""


def clean_note(note: Any) -> str:
    text = note.strip() if isinstance(note, str) else ""
    if not text or len(text) > MAX_NOTE:
        message = f"A note of 1 to {MAX_NOTE} characters is required."
        raise InvalidNote(message, errors={"note": [message]})
    return text


def acknowledge_incident(
    incident: SecurityIncident, *, actor: Any, note: str, now: datetime | None = None
) -> tuple[SecurityIncident, bool]:
    """Mark INCIDENT acknowledged by ACTOR with NOTE: (incident, True) the first time, audited with before and after
    and published; (incident unchanged, False) when it already was (idempotent: the first note and actor stay)."""
    text = clean_note(note)
    now = now or timezone.now()
    with transaction.atomic():
        locked = SecurityIncident.objects.select_for_update().get(pk=incident.pk)
        if locked.state == IncidentState.ACKNOWLEDGED:
            return locked, False
        before = _ack_state(locked)
        locked.state = IncidentState.ACKNOWLEDGED
        locked.acknowledged_at = now
        locked.acknowledged_by = actor_name(actor)[:200]
        locked.note = text
        locked.save(update_fields=["state", "acknowledged_at", "acknowledged_by", "note"])
        audit.record(
            f"{RESOURCE_TYPE}.acknowledged",
            RESOURCE_TYPE,
            locked.pk,
            actor=actor,
            tenant_id=locked.tenant_id,
            before=before,
            after=_ack_state(locked),
            metadata={"kind": locked.kind, "reason": locked.reason},
        )
        publish(
            SECURITY_INCIDENTS,
            locked.tenant_id,
            {"incident_id": locked.pk, "kind": locked.kind, "reason": locked.reason, "state": locked.state,
             "acknowledged_by": locked.acknowledged_by},
            event_type="security.incident.acknowledged",
            tenant_id=locked.tenant_id,
            actor=actor,
        )  # fmt: skip
    return locked, True
