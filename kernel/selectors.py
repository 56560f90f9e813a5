"""Reads of kernel state that the services, the presenters, the Console and other apps share (no writes here).

Each takes the tenant (or the principal) explicitly. ``get_proposal_for_tenant`` raises ``ProposalNotFound`` (a
domain error, never HTTP). The dashboard reads the kernel only here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from aion.auth.principal import Principal
from aion.roles import Role
from kernel.choices import ProposalState, RevisionKind
from kernel.errors import ProposalNotFound
from kernel.models import Approval, ConfigRevision, ConfigScope, Proposal


def get_proposal_for_tenant(tenant_id: str, proposal_id: Any) -> Proposal:
    """The tenant's proposal, or ``ProposalNotFound`` (another tenant's id is indistinguishable from none)."""
    try:
        pk = uuid.UUID(str(proposal_id))
    except (TypeError, ValueError, AttributeError):
        raise ProposalNotFound("No such proposal.") from None
    # The base revision is immutable and never changes on a proposal: read it here, once (the lock keeps it).
    proposal = Proposal.objects.filter(tenant_id=tenant_id, pk=pk).select_related("base_revision").first()
    if proposal is None:
        raise ProposalNotFound("No such proposal.")
    return proposal


def current_revision(tenant_id: str, scope: str) -> ConfigRevision | None:
    head = ConfigScope.objects.filter(tenant_id=tenant_id, scope=scope).select_related("current").first()
    return head.current if head else None


def current_document(tenant_id: str, scope: str) -> dict[str, Any]:
    revision = current_revision(tenant_id, scope)
    return dict(revision.document) if revision else {}


def approvals_of(proposal: Proposal) -> list[Approval]:
    """The proposal's approvals, oldest first: the list read under the lock when there is one (``approval_list``)."""
    cached: list[Approval] | None = getattr(proposal, "approval_list", None)
    return cached if cached is not None else list(proposal.approvals.all())


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
