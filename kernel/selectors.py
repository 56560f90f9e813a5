"""Reads of kernel state that the services, the presenters and other apps share (no writes here).

``get_proposal_for_tenant`` raises ``ProposalNotFound`` (a domain error, never HTTP).
"""

from __future__ import annotations

import uuid
from typing import Any

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
