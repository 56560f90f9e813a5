"""The dashboard's panels: "what needs me?", each read from its app's public surface, only for roles that read it.

The kernel is read through ``kernel.selectors``; webhooks, memory and modules through their ``models`` (a public
surface in the import contracts), tenant-scoped here and bounded (counts plus the first few rows). A panel the
person's roles do not read is absent, never an empty promise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone

from aion.auth.principal import Principal
from aion.roles import Role
from hooks.choices import DeliveryStatus
from hooks.models import WebhookDelivery
from kernel import selectors
from memory.choices import UploadState
from memory.models import Upload
from modules.choices import HealthStatus
from modules.models import Module

ROWS = 5
KERNEL_READERS = (Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER, Role.KERNEL_BREAKGLASS, Role.AUDITOR)


@dataclass
class Panel:
    count: int
    rows: list[Any] = field(default_factory=list)


def _has_any(principal: Principal, roles: tuple[str, ...]) -> bool:
    return any(principal.has_role(role) for role in roles)


def awaiting_my_approval(principal: Principal) -> Panel | None:
    if not principal.has_role(Role.KERNEL_ADMIN):
        return None
    queryset = selectors.awaiting_approval(principal)
    return Panel(count=queryset.count(), rows=list(queryset[:ROWS]))


def recent_changes(principal: Principal) -> Panel | None:
    if not _has_any(principal, KERNEL_READERS):
        return None
    rows = list(selectors.recent_revisions(principal.tenant_id, limit=ROWS))
    return Panel(count=len(rows), rows=rows)


def rollback_chart(principal: Principal, days: int = 14) -> dict[str, Any] | None:
    """Bars of rollbacks per day (the events ``k_rollbacks_total`` counts), as numbers an inline SVG draws."""
    if not _has_any(principal, KERNEL_READERS):
        return None
    counts = selectors.rollbacks_per_day(principal.tenant_id, days=days)
    top = max([c.count for c in counts] + [1])
    width, height, gap = 18, 60, 4
    bars = [
        {
            "x": 30 + i * (width + gap),
            "height": round(height * c.count / top),
            "y": 10 + height - round(height * c.count / top),
            "count": c.count,
            "day": c.day,
        }
        for i, c in enumerate(counts)
    ]
    return {
        "bars": bars,
        "top": top,
        "total": sum(c.count for c in counts),
        "days": days,
        "width": 30 + days * (width + gap),
        "bar_width": width,
        "base": 10 + height,
    }


def webhook_failures(principal: Principal, now: Any = None) -> Panel | None:
    """Deliveries that failed for good in the last 24 h (a retrying one may still succeed)."""
    if not principal.has_role(Role.HOOKS_ADMIN):
        return None
    since = (now or timezone.now()) - timedelta(hours=24)
    queryset = (
        WebhookDelivery.objects.for_tenant(principal.tenant_id)
        .filter(status=DeliveryStatus.FAILED, updated_at__gte=since)
        .select_related("endpoint")
        .defer("payload")
        .order_by("-updated_at")
    )
    return Panel(count=queryset.count(), rows=list(queryset[:ROWS]))


def uploads_in_progress(principal: Principal) -> Panel | None:
    if not _has_any(principal, (Role.MEMORY_READER, Role.MEMORY_WRITER)):
        return None
    active = (UploadState.RECEIVING, UploadState.ASSEMBLING, UploadState.PROCESSING)
    queryset = Upload.objects.for_tenant(principal.tenant_id).filter(state__in=active).order_by("-created_at")
    fields = ("id", "filename", "state", "step", "received_chunks", "total_chunks", "created_at")
    return Panel(count=queryset.count(), rows=list(queryset.only(*fields)[:ROWS]))


def module_hosts_down(principal: Principal) -> Panel | None:
    if not principal.has_role(Role.MODULES_ADMIN):
        return None
    queryset = Module.objects.for_tenant(principal.tenant_id).filter(enabled=True, health=HealthStatus.DOWN).order_by("-health_changed_at")
    return Panel(count=queryset.count(), rows=list(queryset[:ROWS]))
