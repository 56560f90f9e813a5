"""Security incidents: failed verifications are recorded, audited, published and counted."""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import transaction
from prometheus_client import Counter

from aion import audit
from aion.context import current_request_id
from aion.models import AuditResult, SecurityIncident
from aion.outbox import publish
from aion.redaction import redact
from aion.topics import SECURITY_INCIDENTS

SECURITY_INCIDENTS_TOTAL = Counter("aion_security_incidents_total", "Security incidents recorded", ["kind", "reason"])


def record_incident(
    kind: str,
    reason: str,
    *,
    tenant_id: str = "",
    source_ip: str | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    details: dict[str, Any] | None = None,
    actor: Any = None,
) -> SecurityIncident:
    with transaction.atomic():
        incident = SecurityIncident.objects.create(
            tenant_id=tenant_id,
            kind=kind,
            reason=reason,
            source_ip=source_ip,
            headers=redact(dict(headers or {})),
            body_sha256=hashlib.sha256(body).hexdigest() if body is not None else "",
            details=redact(details or {}),
            request_id=current_request_id() or "",
        )
        audit.record(
            f"{kind}.verification_failed",
            "security_incident",
            incident.pk,
            actor=actor or f"ip:{source_ip or 'unknown'}",
            tenant_id=tenant_id,
            after={"kind": kind, "reason": reason, "source_ip": source_ip},
            result=AuditResult.DENIED,
        )
        publish(
            SECURITY_INCIDENTS,
            tenant_id or "unknown",
            {
                "incident_id": incident.pk,
                "kind": kind,
                "reason": reason,
                "source_ip": source_ip,
                "body_sha256": incident.body_sha256,
            },
            event_type="security.incident",
            tenant_id=tenant_id,
            actor=actor,
        )
    SECURITY_INCIDENTS_TOTAL.labels(kind, reason).inc()
    return incident
