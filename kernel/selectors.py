"""Read-side queries of the kernel other apps use (the Console dashboard) and the Console's inbox.

Each takes the tenant (or the principal) explicitly; none writes. The dashboard reads the kernel only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from aion.auth.principal import Principal
from aion.roles import Role
from kernel.choices import ProposalState, RevisionKind
from kernel.models import Approval, ConfigRevision, Proposal


def awaiting_approval(principal: Principal) -> QuerySet[Proposal]:
    """Pending proposals of PRINCIPAL's tenant that PRINCIPAL may approve now: a kernel admin who neither proposed
    nor already approved them (separation of duties; each approver counts once). Oldest deadline first."""
    if not principal.has_role(Role.KERNEL_ADMIN):
        return Proposal.objects.none()
    mine = Approval.objects.filter(proposal=OuterRef("pk"), approver=principal.subject)
    return (
        Proposal.objects.filter(tenant_id=principal.tenant_id, state=ProposalState.PENDING, expires_at__gt=timezone.now())
        .exclude(proposer=principal.subject)
        .exclude(Exists(mine))
        .annotate(approval_count=Count("approvals"))
        .order_by("expires_at", "created_at")
    )


def recent_revisions(tenant_id: str, limit: int = 10) -> QuerySet[ConfigRevision]:
    """The latest applies and rollbacks of every scope of TENANT, newest first (documents not loaded)."""
    return (
        ConfigRevision.objects.filter(tenant_id=tenant_id)
        .defer("document")
        .select_related("parent")
        .only("number", "scope", "kind", "author", "created_at", "proposal_id", "parent__number")
        .order_by("-created_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class DayCount:
    day: date
    count: int


def rollbacks_per_day(tenant_id: str, days: int = 14, now: datetime | None = None) -> list[DayCount]:
    """Rollback revisions of TENANT per day (UTC) over the last DAYS days, oldest first, zeros included.

    The same events ``k_rollbacks_total`` counts (one per committed rollback), read from the revisions so the
    chart survives restarts and agrees across processes."""
    now = now or timezone.now()
    first = (now - timedelta(days=days - 1)).date()
    start = datetime.combine(first, datetime.min.time(), tzinfo=now.tzinfo)
    rows = (
        ConfigRevision.objects.filter(tenant_id=tenant_id, kind=RevisionKind.ROLLBACK, created_at__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
    )
    counts: dict[Any, int] = {row["day"]: row["n"] for row in rows}
    return [DayCount(day=first + timedelta(days=i), count=counts.get(first + timedelta(days=i), 0)) for i in range(days)]
