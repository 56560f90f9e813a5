"""How kernel proposals and revisions are shown: the dicts the API, the Console and every event carry.

Reads only, no state change (that is ``kernel.services``) and nothing HTTP: the API's serializers
and the Console's views render these. ``proposal_state`` is the one representation of a proposal
(list items, the detail, event payloads); ``proposal_etag`` is the version token the transitions
compare with the caller's If-Match.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.db.models import F, QuerySet

from aion.etags import etag_for
from aion.models import AuditRecord
from kernel.choices import OPEN_STATES, RESOURCE_TYPE
from kernel.documents import document_sha256, same_value
from kernel.models import Approval, ConfigRevision, Proposal
from kernel.selectors import approvals_of, current_document


def proposal_etag(proposal: Proposal) -> str:
    return _proposal_etag(proposal.pk, proposal.version)


def _proposal_etag(pk: Any, version: int) -> str:
    return etag_for(f"kernel.proposal:{pk}:{version}")


def revision_etag(tenant_id: str, scope: str, number: int, sha256: str) -> str:
    return etag_for(f"kernel.config:{tenant_id}:{scope}:{number}:{sha256}")


# What a state is made of: the proposal's own columns and its revisions' numbers, never a revision
# row (its document can be large). The list reads exactly these as rows (``proposal_rows``).
STATE_COLUMNS = (
    "id",
    "tenant_id",
    "scope",
    "target",
    "state",
    "changes",
    "justification",
    "risk_score",
    "ttl_seconds",
    "expires_at",
    "content_hash",
    "proposer",
    "required_approvals",
    "auto_apply",
    "breakglass",
    "drifted_keys",
    "reject_reason",
    "rollback_reason",
    "decided_by",
    "created_at",
    "updated_at",
    "approved_at",
    "applied_at",
    "rejected_at",
    "expired_at",
    "failed_at",
    "rolled_back_at",
    "version",
)
REVISION_NUMBERS = ("base_revision", "applied_revision", "rollback_revision")
APPROVAL_COLUMNS = ("approver", "approver_kind", "created_at", "comment", "content_hash", "breakglass")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def approval_state(approval: Approval) -> dict[str, Any]:
    return approval_row_state({name: getattr(approval, name) for name in APPROVAL_COLUMNS})


def approval_row_state(row: Mapping[str, Any]) -> dict[str, Any]:
    """``approval_state`` of a row holding ``APPROVAL_COLUMNS``."""
    return {
        "approver": row["approver"],
        "approver_kind": row["approver_kind"],
        "approved_at": row["created_at"].isoformat(),
        "comment": row["comment"],
        "content_hash": row["content_hash"],
        "breakglass": row["breakglass"],
    }


def proposal_state(proposal: Proposal) -> dict[str, Any]:
    """The full state of a proposal: the API representation and every event's payload."""
    row = {name: getattr(proposal, name) for name in STATE_COLUMNS}
    for name in REVISION_NUMBERS:
        revision: ConfigRevision | None = getattr(proposal, name)
        row[f"{name}_number"] = revision.number if revision is not None else None
    return proposal_row_state(row, [approval_state(a) for a in approvals_of(proposal)])


def proposal_row_state(row: Mapping[str, Any], approvals: list[dict[str, Any]]) -> dict[str, Any]:
    """``proposal_state`` of a row holding ``STATE_COLUMNS`` and ``<revision>_number``, with its APPROVALS' states.

    The one place the representation is written: the model's state is built through it too, so a
    list item and the detail (or an event's payload) are the same keys in the same order."""
    iso = _iso
    return {
        "id": str(row["id"]),
        "tenant_id": row["tenant_id"],
        "scope": row["scope"],
        "target": row["target"],
        "state": row["state"],
        "changes": row["changes"],
        "justification": row["justification"],
        "risk_score": row["risk_score"],
        "ttl_seconds": row["ttl_seconds"],
        "expires_at": iso(row["expires_at"]),
        "base_revision": row["base_revision_number"],
        "content_hash": row["content_hash"],
        "proposer": row["proposer"],
        "required_approvals": row["required_approvals"],
        "approvals": approvals,
        "auto_apply": row["auto_apply"],
        "breakglass": row["breakglass"],
        "drifted_keys": row["drifted_keys"],
        "reject_reason": row["reject_reason"],
        "rollback_reason": row["rollback_reason"],
        "decided_by": row["decided_by"],
        "applied_revision": row["applied_revision_number"],
        "rollback_revision": row["rollback_revision_number"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "approved_at": iso(row["approved_at"]),
        "applied_at": iso(row["applied_at"]),
        "rejected_at": iso(row["rejected_at"]),
        "expired_at": iso(row["expired_at"]),
        "failed_at": iso(row["failed_at"]),
        "rolled_back_at": iso(row["rolled_back_at"]),
        "version": row["version"],
        "etag": _proposal_etag(row["id"], row["version"]),
    }


@functools.cache
def _all_proposal_rows() -> QuerySet[Proposal, dict[str, Any]]:
    # Built once and never evaluated itself (only its clones are): resolving these 31 names and
    # three joins cost more than running the page. Built on first use, once the app registry is ready.
    numbers = {f"{name}_number": F(f"{name}__number") for name in REVISION_NUMBERS}
    return Proposal.objects.values(*STATE_COLUMNS, **numbers)


def proposal_rows(tenant_id: str) -> QuerySet[Proposal, dict[str, Any]]:
    """The tenant's proposals (newest first) as the rows ``proposal_row_state`` takes: the revisions'
    numbers joined, not their rows. A fresh queryset: filter, slice and evaluate it freely."""
    return _all_proposal_rows().filter(tenant_id=tenant_id)


def proposal_states(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The states of ROWS (from ``proposal_rows``), their approvals read in one query.

    Only proposals changed since submission (version > 1) can have approvals: recording one
    bumps the version in the same transaction (``approve_proposal``, ``breakglass_approve``), so a
    page of fresh proposals reads none."""
    rows = list(rows)
    changed = [row["id"] for row in rows if row["version"] > 1]
    approvals: dict[Any, list[dict[str, Any]]] = {}
    if changed:
        oldest_first = Approval.objects.filter(proposal_id__in=changed).order_by("created_at", "id")
        for approval in oldest_first.values("proposal_id", *APPROVAL_COLUMNS):
            approvals.setdefault(approval["proposal_id"], []).append(approval_row_state(approval))
    return [proposal_row_state(row, approvals.get(row["id"], [])) for row in rows]


def proposal_diff(proposal: Proposal) -> list[dict[str, Any]]:
    """Each key's ``from``, ``to`` and live (``current``) value. ``drifted`` (the live value is no longer ``from``)
    only while the proposal is open: once applied, the live value is its own ``to``, not drift (issue 16)."""
    document = current_document(proposal.tenant_id, proposal.scope)
    is_open = proposal.state in OPEN_STATES
    rows = []
    for change in proposal.changes:
        current = document.get(change["key"])
        rows.append(
            {
                "key": change["key"],
                "current": current,
                "from": change["from"],
                "to": change["to"],
                "drifted": is_open and not same_value(current, change["from"]),
            }
        )
    return rows


def proposal_history(proposal: Proposal) -> list[dict[str, Any]]:
    """The audit trail of one proposal, oldest first."""
    records = AuditRecord.objects.filter(tenant_id=proposal.tenant_id, resource_type=RESOURCE_TYPE, resource_id=str(proposal.pk))
    return [
        {
            "at": r.created_at.isoformat(),
            "actor": r.actor,
            "actor_kind": r.actor_kind,
            "action": r.action,
            "result": r.result,
            "state": (r.after or {}).get("state") if isinstance(r.after, dict) else None,
            "metadata": r.metadata,
            "request_id": r.request_id,
        }
        for r in records.order_by("created_at", "id")
    ]


def revision_state(revision: ConfigRevision) -> dict[str, Any]:
    return {
        "scope": revision.scope,
        "revision": revision.number,
        "document": revision.document,
        "sha256": revision.sha256,
        "created_at": revision.created_at.isoformat(),
        "proposal_id": str(revision.proposal_id) if revision.proposal_id else None,
        "parent": revision.parent.number if revision.parent_id and revision.parent else None,
        "kind": revision.kind,
        "author": revision.author,
    }


def empty_revision_state(scope: str) -> dict[str, Any]:
    """Revision 0: a scope nothing has been applied to yet (an empty document)."""
    return {
        "scope": scope,
        "revision": 0,
        "document": {},
        "sha256": document_sha256({}),
        "created_at": None,
        "proposal_id": None,
        "parent": None,
        "kind": None,
        "author": None,
    }
