"""Audit records: every state change writes one, in the same transaction.

``record()`` stores who did what, before and after (secrets redacted), the
request id and the result, and publishes it to ``aion.audit.activity``.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from aion.context import current_request_id
from aion.models import AuditRecord, AuditResult
from aion.outbox import actor_name, publish
from aion.redaction import redact
from aion.topics import AUDIT_ACTIVITY


def record(
    action: str,
    resource_type: str,
    resource_id: Any,
    *,
    actor: Any,
    tenant_id: str,
    before: Any = None,
    after: Any = None,
    result: str = AuditResult.SUCCESS,
    metadata: dict[str, Any] | None = None,
) -> AuditRecord:
    # No savepoint (see aion.outbox.publish): the record fails or commits with the change it audits.
    with transaction.atomic(savepoint=False):
        entry = AuditRecord.objects.create(
            actor=actor_name(actor),
            actor_kind=getattr(actor, "kind", "system" if actor is None else "user"),
            tenant_id=tenant_id,
            action=action,
            resource_type=resource_type,
            resource_id=str(resource_id or ""),
            before=redact(before),
            after=redact(after),
            request_id=current_request_id() or "",
            result=result,
            metadata=redact(metadata or {}),
        )
        publish(
            AUDIT_ACTIVITY,
            f"{resource_type}:{entry.resource_id}",
            {
                "audit_id": entry.pk,
                "action": action,
                "resource_type": resource_type,
                "resource_id": entry.resource_id,
                "result": result,
                "before": entry.before,
                "after": entry.after,
                "metadata": entry.metadata,
            },
            event_type=f"audit.{action}",
            tenant_id=tenant_id,
            actor=actor,
        )
    return entry
