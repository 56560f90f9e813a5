"""Every state change of kernel proposals and configuration revisions, in one place.

The API, the Console, signed webhooks (hooks app), beat jobs and management commands all
call these functions; views stay thin. Each function takes the acting ``Principal`` and
checks RBAC itself, so no caller can skip it. Each transition is atomic (the proposal row
is locked with ``select_for_update``; applies and rollbacks also lock the scope head, so
two applies on one scope serialise), writes an audit record (before and after) and
publishes the full proposal state to ``kernel.proposals`` (key = proposal id, event type
``kernel.proposal.<new state>``) in the same transaction.

Stable signatures used by other apps (hooks)::

    approve_proposal(proposal, actor, *, comment="", if_match=None, now=None) -> Proposal
    reject_proposal(proposal, actor, *, reason, if_match=None, now=None) -> Proposal
    get_proposal_for_tenant(tenant_id, proposal_id) -> Proposal   # 404 Problem otherwise
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import F, Prefetch, QuerySet
from django.utils import timezone

from aion import audit
from aion.api.etag import etag_for
from aion.auth.principal import Principal, system_principal
from aion.models import AuditRecord, AuditResult
from aion.outbox import publish
from aion.problems import Problem
from aion.rbac import Role
from aion.topics import KERNEL_PROPOSALS
from kernel import metrics
from kernel.choices import OPEN_STATES, ProposalState, RevisionKind
from kernel.live import notify_tenant
from kernel.models import Approval, ConfigRevision, ConfigScope, Proposal
from kernel.policy import Policy, current_policy

RESOURCE_TYPE = "kernel.proposal"
REVISION_RESOURCE_TYPE = "kernel.config_revision"
# Roles that may read proposals and configuration (writes need the named role).
READ_ROLES = frozenset({Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER, Role.KERNEL_BREAKGLASS, Role.AUDITOR})
MAX_CHANGES = 100
MAX_TEXT = 4000


# --- helpers -----------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def document_sha256(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def content_hash_for(scope: str, target: str, changes: list[dict[str, Any]]) -> str:
    """What an approval is bound to: the scope, target and exact changes."""
    return hashlib.sha256(canonical_json({"scope": scope, "target": target, "changes": changes}).encode()).hexdigest()


def same_value(a: Any, b: Any) -> bool:
    """JSON equality that keeps true apart from 1 and 1 apart from "1"."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def proposal_etag(proposal: Proposal) -> str:
    return _proposal_etag(proposal.pk, proposal.version)


def _proposal_etag(pk: Any, version: int) -> str:
    return etag_for(f"kernel.proposal:{pk}:{version}")


def revision_etag(tenant_id: str, scope: str, number: int, sha256: str) -> str:
    return etag_for(f"kernel.config:{tenant_id}:{scope}:{number}:{sha256}")


def _check_if_match(if_match: str | None, proposal: Proposal) -> None:
    """412 when the caller's ETag (If-Match or the Console's hidden field) is stale."""
    if not if_match:
        return
    current = proposal_etag(proposal)
    candidates = {c.strip()[2:] if c.strip().startswith("W/") else c.strip() for c in str(if_match).split(",")}
    if "*" in candidates or current in candidates:
        return
    raise Problem(
        412,
        "The proposal changed since you read it; reload it and try again.",
        slug="stale-etag",
        current_etag=current,
        state=proposal.state,
    )


def _rbac_decision(actor: Principal, required_role: str) -> dict[str, Any]:
    return {
        "actor": actor.subject,
        "actor_kind": actor.kind,
        "roles": sorted(actor.roles),
        "required_role": str(required_role),
        "allowed": True,
    }


def _require_role(actor: Principal, role: str, action: str, *, tenant_id: str, resource_id: Any = "") -> None:
    """RBAC inside the action: a refused attempt is audited (result=denied) and answered 403."""
    if role in getattr(actor, "roles", ()):
        return
    audit.record(
        f"{RESOURCE_TYPE}.{action}",
        RESOURCE_TYPE,
        resource_id,
        actor=actor,
        tenant_id=tenant_id,
        result=AuditResult.DENIED,
        metadata={"rbac": {**_rbac_decision(actor, role), "allowed": False}},
    )
    raise Problem(403, f"This action requires the role {str(role)!r}.", slug="forbidden", required_role=str(role))


def _check_tenant(actor: Principal, proposal: Proposal) -> None:
    if actor.tenant_id != proposal.tenant_id:
        raise Problem(404, "No such proposal.", slug="not-found")


def _refuse_self_approval(actor: Principal, proposal: Proposal, action: str, detail: str) -> Problem:
    """The proposer approving their own proposal: audited (denied) and a ``self_approval`` incident, then a 403.

    Called before the proposal lock (the proposer never changes), so the record commits although the action fails."""
    from aion.incidents import record_incident
    from aion.models import IncidentKind

    with transaction.atomic():
        audit.record(
            f"{RESOURCE_TYPE}.{action}", RESOURCE_TYPE, proposal.pk, actor=actor, tenant_id=proposal.tenant_id,
            result=AuditResult.DENIED, metadata={"reason": "separation_of_duties", "proposer": proposal.proposer},
        )  # fmt: skip
        record_incident(
            IncidentKind.SELF_APPROVAL, action, tenant_id=proposal.tenant_id, actor=actor,
            details={"proposal_id": str(proposal.pk), "proposer": proposal.proposer, "action": action},
        )  # fmt: skip
    return Problem(403, detail, slug="separation-of-duties")


def _invalid_transition(proposal: Proposal, wanted: str) -> Problem:
    return Problem(
        409,
        f"Cannot {wanted} a proposal in state {proposal.state!r}.",
        slug="invalid-transition",
        state=proposal.state,
    )


def _required_policy() -> Policy:
    policy = current_policy()
    if policy is None:
        raise Problem(503, "No valid kernel guardrail policy is loaded; see /readyz (kernel_policy).", slug="policy-unavailable")
    return policy


def get_proposal_for_tenant(tenant_id: str, proposal_id: Any) -> Proposal:
    """The tenant's proposal, or a 404 Problem (another tenant's id is indistinguishable from none)."""
    try:
        pk = uuid.UUID(str(proposal_id))
    except (TypeError, ValueError, AttributeError):
        raise Problem(404, "No such proposal.", slug="not-found") from None
    # The base revision is immutable and never changes on a proposal: read it here, once (_lock_proposal keeps it).
    proposal = Proposal.objects.filter(tenant_id=tenant_id, pk=pk).select_related("base_revision").first()
    if proposal is None:
        raise Problem(404, "No such proposal.", slug="not-found")
    return proposal


def current_revision(tenant_id: str, scope: str) -> ConfigRevision | None:
    head = ConfigScope.objects.filter(tenant_id=tenant_id, scope=scope).select_related("current").first()
    return head.current if head else None


def current_document(tenant_id: str, scope: str) -> dict[str, Any]:
    revision = current_revision(tenant_id, scope)
    return dict(revision.document) if revision else {}


def _lock_scope(tenant_id: str, scope: str, now: datetime, *, with_parent: bool = False) -> tuple[ConfigScope, ConfigRevision | None]:
    """The scope head, row-locked until the transaction ends (serialises applies and rollbacks on
    a scope), and its current revision, read in a separate query once the lock is held.

    Never join the revision into the locking SELECT: after waiting on the lock, PostgreSQL
    (READ COMMITTED) re-reads only the locked row, so a revision committed meanwhile comes back
    NULL. Each later statement takes a fresh snapshot and sees it. The first apply on a scope
    creates the head; a concurrent first apply waits on the unique index, loses, and then
    waits on the winner's row lock like any other apply.
    """
    locked = ConfigScope.objects.select_for_update()
    try:
        head = locked.get(tenant_id=tenant_id, scope=scope)
    except ConfigScope.DoesNotExist:
        try:
            with transaction.atomic():
                head = ConfigScope.objects.create(tenant_id=tenant_id, scope=scope, updated_at=now)
        except IntegrityError:
            head = locked.get(tenant_id=tenant_id, scope=scope)
    if head.current_id is None:
        return head, None
    revisions = ConfigRevision.objects.select_related("parent") if with_parent else ConfigRevision.objects
    return head, revisions.get(pk=head.current_id)


def _lock_proposal(proposal: Proposal) -> Proposal:
    """PROPOSAL re-read and row-locked until the transaction ends, with its approvals as read under the lock.

    The approvals land in ``approval_list`` (a plain list the transitions append to), so the
    state, the duplicate check and the count read them once. The base revision already read
    is kept: revisions are immutable and a proposal's base never changes.
    """
    approvals = Prefetch("approvals", queryset=Approval.objects.order_by("created_at", "id"), to_attr="approval_list")
    locked = Proposal.objects.select_for_update().prefetch_related(approvals).get(pk=proposal.pk)
    if Proposal.base_revision.is_cached(proposal) and locked.base_revision_id == proposal.base_revision_id:
        locked.base_revision = proposal.base_revision
    return locked


def _approvals(proposal: Proposal) -> list[Approval]:
    """The proposal's approvals, oldest first: the list read under the lock when there is one."""
    cached: list[Approval] | None = getattr(proposal, "approval_list", None)
    return cached if cached is not None else list(proposal.approvals.all())


# --- representation ----------------------------------------------------------------------------


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
    return proposal_row_state(row, [approval_state(a) for a in _approvals(proposal)])


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


# --- transitions -------------------------------------------------------------------------------


def _emit(
    proposal: Proposal,
    actor: Principal,
    *,
    action: str,
    event_type: str,
    previous_state: str | None,
    before: dict[str, Any] | None,
    rbac: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    live: list[dict[str, Any]] | None = None,
    send_live: bool = True,
) -> dict[str, Any]:
    """Audit + outbox event + (after commit) metrics and live update, for one change of PROPOSAL.

    Returns the state written as ``after`` (the ``before`` of a transition that follows at once).
    LIVE collects the live-update messages of transitions in one transaction; ``send_live=False``
    leaves them to the last one, so they reach the channel layer in one hop after commit."""
    after = proposal_state(proposal)
    breakglass = bool(proposal.breakglass or (extra or {}).get("breakglass"))
    metadata: dict[str, Any] = {"breakglass": breakglass, "previous_state": previous_state, "state": proposal.state}
    if rbac:
        metadata["rbac"] = rbac
    metadata.update(extra or {})
    audit.record(
        f"{RESOURCE_TYPE}.{action}",
        RESOURCE_TYPE,
        proposal.pk,
        actor=actor,
        tenant_id=proposal.tenant_id,
        before=before,
        after=after,
        metadata=metadata,
    )
    payload: dict[str, Any] = {
        "proposal": after,
        "previous_state": previous_state,
        "state": proposal.state,
        "action": action,
        "breakglass": breakglass,
        "rbac": rbac,
    }
    payload.update({k: v for k, v in (extra or {}).items() if k not in payload})
    publish(KERNEL_PROPOSALS, str(proposal.pk), payload, event_type=event_type, tenant_id=proposal.tenant_id, actor=actor)

    tenant, state, changed = proposal.tenant_id, proposal.state, previous_state != proposal.state
    messages = live if live is not None else []
    messages.append({"id": str(proposal.pk), "state": state, "version": proposal.version, "action": action})

    def after_commit() -> None:
        if changed:
            metrics.PROPOSALS_TOTAL.labels(state=state).inc()
        if send_live:
            notify_tenant(tenant, *messages)

    transaction.on_commit(after_commit, robust=True)
    return after


def _set_state(proposal: Proposal, state: str, now: datetime, *, save: bool = True, **fields: Any) -> None:
    """Move PROPOSAL to STATE (version bumped). ``save=False`` when an apply follows in the same
    transaction: ``_apply_locked`` always saves the row, so both transitions cost one UPDATE."""
    proposal.state = state
    proposal.version += 1
    proposal.updated_at = now
    for name, value in fields.items():
        setattr(proposal, name, value)
    if save:
        proposal.save()


def _validate_changes(policy: Policy, scope: str, changes: Any, errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    if not isinstance(changes, list) or not changes:
        errors.setdefault("changes", []).append("At least one change {key, from, to} is required.")
        return []
    if len(changes) > MAX_CHANGES:
        errors.setdefault("changes", []).append(f"At most {MAX_CHANGES} changes per proposal.")
        return []
    rules = policy.scopes[scope].keys if scope in policy.scopes else {}
    seen: set[str] = set()
    normalised: list[dict[str, Any]] = []
    for index, change in enumerate(changes):
        where = f"changes.{index}"
        if not isinstance(change, dict):
            errors.setdefault(where, []).append("Each change must be an object {key, from, to}.")
            continue
        key = change.get("key")
        if not isinstance(key, str) or not key:
            errors.setdefault(f"{where}.key", []).append("A key is required.")
            continue
        for name in ("from", "to"):
            if name not in change:
                errors.setdefault(f"{where}.{name}", []).append(f"'{name}' is required (null means the key is absent).")
        unknown = sorted(set(change) - {"key", "from", "to"})
        if unknown:
            errors.setdefault(where, []).append("Unknown fields: " + ", ".join(unknown))
        if key in seen:
            errors.setdefault(f"{where}.key", []).append(f"{key!r} appears more than once.")
        seen.add(key)
        if scope in policy.scopes and key not in rules:
            errors.setdefault(f"{where}.key", []).append(f"{key!r} is not on the allowlist of scope {scope!r}.")
        elif key in rules and change.get("to") is not None:
            message = rules[key].check(change["to"])
            if message:
                errors.setdefault(f"{where}.to", []).append(message)
        if "from" in change and "to" in change and same_value(change["from"], change["to"]):
            errors.setdefault(f"{where}.to", []).append("'to' equals 'from': nothing would change.")
        normalised.append({"key": key, "from": change.get("from"), "to": change.get("to")})
    return normalised


def submit_proposal(
    actor: Principal,
    *,
    scope: str,
    changes: list[dict[str, Any]],
    justification: str,
    risk_score: float,
    ttl_seconds: int | None = None,
    target: str = "",
    breakglass: bool = False,
    now: datetime | None = None,
) -> Proposal:
    """Validate against the policy and the current revision, then store a pending proposal.

    ``breakglass=True`` (role kernel.breakglass) applies at once with no approval; the
    justification is mandatory. Policy breaches are 400 with field errors; a ``from``
    that differs from the current value is 409 naming the drifted keys.
    """
    now = _now(now)
    tenant_id = actor.tenant_id
    required_role = Role.KERNEL_BREAKGLASS if breakglass else Role.KERNEL_PROPOSER
    _require_role(actor, required_role, "breakglass_submit" if breakglass else "submit", tenant_id=tenant_id)
    policy = _required_policy()
    if breakglass and not policy.breakglass_enabled:
        raise Problem(403, "Break-glass is disabled by the kernel policy.", slug="breakglass-disabled")

    errors: dict[str, list[str]] = {}
    if not isinstance(scope, str) or scope not in policy.scopes:
        errors["scope"] = [f"Unknown scope; the policy allows: {', '.join(sorted(policy.scopes))}."]
        scope = str(scope)[:64]
    target = target or ""
    if not isinstance(target, str) or len(target) > 200:
        errors["target"] = ["The target must be a string of at most 200 characters."]
    normalised = _validate_changes(policy, scope, changes, errors)
    if not isinstance(justification, str) or not justification.strip():
        errors["justification"] = ["A justification is required."]
    elif len(justification) > MAX_TEXT:
        errors["justification"] = [f"At most {MAX_TEXT} characters."]
    elif breakglass and len(justification.strip()) < policy.breakglass_min_justification:
        errors["justification"] = [f"Break-glass needs a justification of at least {policy.breakglass_min_justification} characters."]
    # One bound, the policy's, in the message too: the Console's label reads the same max_risk_score.
    if isinstance(risk_score, bool) or not isinstance(risk_score, int | float) or not 0 <= risk_score <= policy.max_risk_score:
        errors["risk_score"] = [f"The risk score must be a number from 0 to {policy.max_risk_score} (the policy's max_risk_score)."]
    ttl = policy.default_ttl_seconds if ttl_seconds is None else ttl_seconds
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= policy.max_ttl_seconds:
        errors["ttl_seconds"] = [f"The TTL must be an integer from 1 to {policy.max_ttl_seconds} seconds."]
    if errors:
        raise Problem(400, "The proposal breaks the guardrail policy.", slug="policy-violation", errors=errors)

    with transaction.atomic():
        base = current_revision(tenant_id, scope)
        document = dict(base.document) if base else {}
        drifted = [
            {"key": c["key"], "from": c["from"], "current": document.get(c["key"])}
            for c in normalised
            if not same_value(document.get(c["key"]), c["from"])
        ]
        if drifted:
            raise Problem(
                409,
                "'from' differs from the current configuration for: " + ", ".join(d["key"] for d in drifted),
                slug="drift",
                drifted_keys=drifted,
                current_revision=base.number if base else 0,
            )
        proposal = Proposal.objects.create(
            tenant_id=tenant_id,
            scope=scope,
            target=target,
            changes=normalised,
            justification=justification.strip(),
            risk_score=float(risk_score),
            ttl_seconds=ttl,
            expires_at=now + timedelta(seconds=ttl),
            base_revision=base,
            content_hash=content_hash_for(scope, target, normalised),
            proposer=actor.subject,
            proposer_kind=actor.kind,
            required_approvals=policy.required_approvals(float(risk_score)),
            auto_apply=policy.auto_apply,
            breakglass=breakglass,
            created_at=now,
            updated_at=now,
        )
        proposal.approval_list = []  # type: ignore[attr-defined]  # a new proposal has none: no read
        rbac = _rbac_decision(actor, required_role)
        live: list[dict[str, Any]] = []
        before = _emit(
            proposal,
            actor,
            action="submit",
            event_type="kernel.proposal.pending",
            previous_state=None,
            before=None,
            rbac=rbac,
            live=live,
            send_live=not breakglass,
        )
        if breakglass:
            _set_state(proposal, ProposalState.APPROVED, now, save=False, approved_at=now)
            before = _emit(
                proposal,
                actor,
                action="breakglass_approve",
                event_type="kernel.proposal.approved",
                previous_state=ProposalState.PENDING,
                before=before,
                rbac=rbac,
                live=live,
                send_live=False,
            )
            _apply_locked(proposal, actor, now, rbac=rbac, before=before, live=live)
            _count_breakglass(proposal)
    return proposal


def _count_breakglass(proposal: Proposal) -> None:
    tenant, scope = proposal.tenant_id, proposal.scope
    transaction.on_commit(lambda: metrics.BREAKGLASS_TOTAL.labels(tenant=tenant, scope=scope).inc(), robust=True)


def _observe_lead_time(stage: str, proposal: Proposal, at: datetime) -> None:
    seconds = max((at - proposal.created_at).total_seconds(), 0.0)
    transaction.on_commit(lambda: metrics.PROPOSAL_LEAD_TIME.labels(stage=stage).observe(seconds), robust=True)


def expire_if_due(proposal: Proposal, now: datetime | None = None) -> Proposal:
    """Reads see expiry at once: an open proposal past its TTL is marked expired (own transaction)."""
    now = _now(now)
    if proposal.state not in OPEN_STATES or proposal.expires_at > now:
        return proposal
    with transaction.atomic():
        locked = _lock_proposal(proposal)
        if locked.state in OPEN_STATES and locked.expires_at <= now:
            before, previous = proposal_state(locked), locked.state
            _set_state(locked, ProposalState.EXPIRED, now, expired_at=now)
            _emit(
                locked,
                system_principal(locked.tenant_id, "kernel-expiry"),
                action="expire",
                event_type="kernel.proposal.expired",
                previous_state=previous,
                before=before,
            )
    return locked


@functools.cache
def _any_due_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    column = {f.name: quote(str(f.column)) for f in Proposal._meta.concrete_fields}
    states = ", ".join(["%s"] * len(OPEN_STATES))
    return (
        f"SELECT 1 FROM {quote(Proposal._meta.db_table)} WHERE {column['tenant_id']} = %s"  # noqa: S608 - names, not values
        f" AND {column['state']} IN ({states}) AND {column['expires_at']} <= %s LIMIT 1"
    )


def _any_due(tenant_id: str, now: datetime) -> bool:
    """Whether an open proposal of TENANT_ID is past its TTL: one EXISTS on the (tenant, state) index.

    Every list (API and Console) asks this before reading, and almost always nothing is due. The
    statement is fixed, so it is written once per database instead of compiled by the ORM on every
    list (that compilation cost ten times the query on SQLite); the values are adapted by the
    backend as the ORM adapts them for ``expires_at__lte``."""
    alias = router.db_for_read(Proposal)
    connection = connections[alias]
    params = [tenant_id, *(str(s) for s in OPEN_STATES), connection.ops.adapt_datetimefield_value(now)]
    with connection.cursor() as cursor:
        cursor.execute(_any_due_sql(alias), params)
        return cursor.fetchone() is not None


def expire_proposals(now: datetime | None = None, *, tenant_id: str | None = None, limit: int = 1000) -> int:
    """Mark every open proposal past its TTL as expired (the beat job ``kernel.expire_proposals``)."""
    now = _now(now)
    if tenant_id is not None and not _any_due(tenant_id, now):
        return 0  # the usual answer on a read, before any queryset is built
    due = Proposal.objects.filter(state__in=OPEN_STATES, expires_at__lte=now)
    if tenant_id is not None:
        due = due.filter(tenant_id=tenant_id)
    expired = 0
    for proposal in due.order_by("expires_at")[:limit]:
        if expire_if_due(proposal, now).state == ProposalState.EXPIRED:
            expired += 1
    return expired


def approve_proposal(
    proposal: Proposal, actor: Principal, *, comment: str = "", if_match: str | None = None, now: datetime | None = None
) -> Proposal:
    """Record ACTOR's approval (role kernel.admin), bound to the proposal's content hash.

    Separation of duties: the proposer can never approve; each approver counts once; the
    proposal becomes ``approved`` at ``required_approvals`` distinct approvals and, when the
    policy snapshot says ``auto_apply``, is applied in the same transaction (a drifted scope
    leaves it ``failed``). ``if_match`` is the ETag the caller read (412 when stale). Called
    by the API, the Console and signed webhooks (actor kind ``hook``). Returns the proposal.
    """
    now = _now(now)
    _check_tenant(actor, proposal)
    _require_role(actor, Role.KERNEL_ADMIN, "approve", tenant_id=proposal.tenant_id, resource_id=proposal.pk)
    comment = (comment or "").strip()
    if len(comment) > MAX_TEXT:
        raise Problem(400, "The comment is too long.", errors={"comment": [f"At most {MAX_TEXT} characters."]})
    proposal = expire_if_due(proposal, now)
    if proposal.state == ProposalState.PENDING and proposal.proposer == actor.subject:
        raise _refuse_self_approval(actor, proposal, "approve", "Separation of duties: the proposer cannot approve their own proposal.")
    with transaction.atomic():
        proposal = _lock_proposal(proposal)
        _check_if_match(if_match, proposal)
        if proposal.state != ProposalState.PENDING:
            raise _invalid_transition(proposal, "approve")
        if proposal.proposer == actor.subject:
            raise Problem(403, "Separation of duties: the proposer cannot approve their own proposal.", slug="separation-of-duties")
        if any(a.approver == actor.subject for a in _approvals(proposal)):
            raise Problem(
                409, "You have already approved this proposal; each approver counts once.", slug="already-approved", state=proposal.state
            )
        rbac = _rbac_decision(actor, Role.KERNEL_ADMIN)
        before = proposal_state(proposal)
        _record_approval(proposal, actor, comment=comment, now=now, breakglass=False)
        count = len(_approvals(proposal))  # read under the proposal lock, plus this one
        if count < proposal.required_approvals:
            proposal.version += 1
            proposal.updated_at = now
            proposal.save(update_fields=["version", "updated_at"])
            _emit(
                proposal,
                actor,
                action="approve",
                event_type="kernel.proposal.approval_recorded",
                previous_state=proposal.state,
                before=before,
                rbac=rbac,
                extra={"approvals": count, "comment": comment},
            )
            return proposal
        _set_state(proposal, ProposalState.APPROVED, now, save=not proposal.auto_apply, approved_at=now)
        _observe_lead_time("approved", proposal, now)
        live: list[dict[str, Any]] = []
        approved = _emit(
            proposal,
            actor,
            action="approve",
            event_type="kernel.proposal.approved",
            previous_state=ProposalState.PENDING,
            before=before,
            rbac=rbac,
            extra={"approvals": count, "comment": comment},
            live=live,
            send_live=not proposal.auto_apply,
        )
        if proposal.auto_apply:
            _apply_locked(proposal, actor, now, rbac=rbac, before=approved, live=live)
    return proposal


def _record_approval(proposal: Proposal, actor: Principal, *, comment: str, now: datetime, breakglass: bool) -> None:
    """Store ACTOR's approval of the locked PROPOSAL (its first write: a refusal rolls back nothing else)."""
    try:
        # No savepoint: the caller checked for a duplicate under the proposal lock, and if the
        # constraint still fires, the 409 leaves the caller's transaction, which rolls back whole.
        approval = Approval.objects.create(
            proposal=proposal,
            approver=actor.subject,
            approver_kind=actor.kind,
            roles=sorted(actor.roles),
            comment=comment,
            content_hash=proposal.content_hash,
            breakglass=breakglass,
            created_at=now,
        )
    except IntegrityError:
        raise Problem(409, "You have already approved this proposal; each approver counts once.", slug="already-approved") from None
    proposal.approval_list = [*_approvals(proposal), approval]  # type: ignore[attr-defined]


def _required_reason(reason: Any, missing_detail: str) -> str:
    """REASON stripped; a 400 with MISSING_DETAIL when it is empty, or when it is too long (reject, rollback)."""
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise Problem(400, missing_detail, slug="validation-error", errors={"reason": ["A reason is required."]})
    if len(reason) > MAX_TEXT:
        raise Problem(400, "The reason is too long.", slug="validation-error", errors={"reason": [f"At most {MAX_TEXT} characters."]})
    return reason


def reject_proposal(
    proposal: Proposal, actor: Principal, *, reason: str, if_match: str | None = None, now: datetime | None = None
) -> Proposal:
    """Reject a pending or approved proposal (role kernel.admin); REASON is required (400 otherwise)."""
    now = _now(now)
    _check_tenant(actor, proposal)
    _require_role(actor, Role.KERNEL_ADMIN, "reject", tenant_id=proposal.tenant_id, resource_id=proposal.pk)
    reason = _required_reason(reason, "A reason is required to reject a proposal.")
    proposal = expire_if_due(proposal, now)
    with transaction.atomic():
        proposal = _lock_proposal(proposal)
        _check_if_match(if_match, proposal)
        if proposal.state not in OPEN_STATES:
            raise _invalid_transition(proposal, "reject")
        before, previous = proposal_state(proposal), proposal.state
        _set_state(proposal, ProposalState.REJECTED, now, rejected_at=now, reject_reason=reason, decided_by=actor.subject)
        _emit(
            proposal,
            actor,
            action="reject",
            event_type="kernel.proposal.rejected",
            previous_state=previous,
            before=before,
            rbac=_rbac_decision(actor, Role.KERNEL_ADMIN),
            extra={"reason": reason},
        )
    return proposal


def _append_revision(
    head: ConfigScope,
    current: ConfigRevision | None,
    proposal: Proposal,
    document: dict[str, Any],
    kind: str,
    actor: Principal,
    now: datetime,
) -> ConfigRevision:
    """Write DOCUMENT as the next revision after CURRENT of the locked scope HEAD and make it current."""
    number = (current.number if current else 0) + 1
    try:
        revision = ConfigRevision.objects.create(
            tenant_id=proposal.tenant_id,
            scope=proposal.scope,
            number=number,
            document=document,
            sha256=document_sha256(document),
            parent=current,
            proposal=proposal,
            kind=kind,
            author=actor.subject,
            created_at=now,
        )
    except IntegrityError:
        # Only a writer that bypassed the scope lock can get here; the whole transaction is
        # rolled back (nothing half-done) and the caller is told to retry, never a 500.
        raise Problem(
            409,
            f"Revision {number} of {proposal.scope!r} was written concurrently; read the configuration and try again.",
            slug="conflict",
            state=proposal.state,
            current_revision=number,
        ) from None
    head.current = revision
    head.updated_at = now
    head.save(update_fields=["current", "updated_at"])
    return revision


def _apply_locked(
    proposal: Proposal,
    actor: Principal,
    now: datetime,
    *,
    rbac: dict[str, Any],
    before: dict[str, Any] | None = None,
    live: list[dict[str, Any]] | None = None,
) -> None:
    """Apply an approved, locked PROPOSAL inside the caller's transaction: a new revision, or ``failed`` on drift.

    Always saves the proposal row (``_set_state(..., save=False)`` before it relies on that).
    BEFORE is its current state when the caller has it already; LIVE the unsent live updates
    of the transitions before it (see ``_emit``)."""
    head, current = _lock_scope(proposal.tenant_id, proposal.scope, now)
    document = dict(current.document) if current else {}
    before = before if before is not None else proposal_state(proposal)
    if (current.pk if current else None) != proposal.base_revision_id:
        # The scope moved since submission: fine unless one of our keys moved too.
        drifted = [
            {"key": c["key"], "from": c["from"], "current": document.get(c["key"])}
            for c in proposal.changes
            if not same_value(document.get(c["key"]), c["from"])
        ]
        if drifted:
            _set_state(proposal, ProposalState.FAILED, now, failed_at=now, drifted_keys=drifted, decided_by=actor.subject)
            _emit(
                proposal,
                actor,
                action="apply",
                event_type="kernel.proposal.failed",
                previous_state=ProposalState.APPROVED,
                before=before,
                rbac=rbac,
                extra={"drifted_keys": drifted, "current_revision": current.number if current else 0},
                live=live,
            )
            return
    for change in proposal.changes:
        if change["to"] is None:
            document.pop(change["key"], None)
        else:
            document[change["key"]] = change["to"]
    revision = _append_revision(head, current, proposal, document, RevisionKind.APPLY, actor, now)
    _set_state(proposal, ProposalState.APPLIED, now, applied_at=now, applied_revision=revision, decided_by=actor.subject)
    _observe_lead_time("applied", proposal, now)
    _emit(
        proposal,
        actor,
        action="apply",
        event_type="kernel.proposal.applied",
        previous_state=ProposalState.APPROVED,
        before=before,
        rbac=rbac,
        extra={"revision": revision.number, "sha256": revision.sha256},
        live=live,
    )


def apply_proposal(proposal: Proposal, actor: Principal, *, if_match: str | None = None, now: datetime | None = None) -> Proposal:
    """Apply an approved proposal (role kernel.admin) when the policy's automatic apply is off.

    Drift (the scope moved and one of the keys no longer equals ``from``) commits the
    ``failed`` state with the drifted keys, changes nothing, and then raises 409.
    """
    now = _now(now)
    _check_tenant(actor, proposal)
    _require_role(actor, Role.KERNEL_ADMIN, "apply", tenant_id=proposal.tenant_id, resource_id=proposal.pk)
    proposal = expire_if_due(proposal, now)
    with transaction.atomic():
        proposal = _lock_proposal(proposal)
        _check_if_match(if_match, proposal)
        if proposal.state != ProposalState.APPROVED:
            raise _invalid_transition(proposal, "apply")
        _apply_locked(proposal, actor, now, rbac=_rbac_decision(actor, Role.KERNEL_ADMIN))
    if proposal.state == ProposalState.FAILED:
        raise Problem(
            409,
            "The configuration drifted since submission; the proposal is now failed and nothing changed.",
            slug="drift",
            state=proposal.state,
            drifted_keys=proposal.drifted_keys,
        )
    return proposal


def breakglass_approve(
    proposal: Proposal, actor: Principal, *, justification: str, if_match: str | None = None, now: datetime | None = None
) -> Proposal:
    """Break-glass (role kernel.breakglass): one approval that is not the proposer's, then apply at once."""
    now = _now(now)
    _check_tenant(actor, proposal)
    _require_role(actor, Role.KERNEL_BREAKGLASS, "breakglass_approve", tenant_id=proposal.tenant_id, resource_id=proposal.pk)
    policy = _required_policy()
    if not policy.breakglass_enabled:
        raise Problem(403, "Break-glass is disabled by the kernel policy.", slug="breakglass-disabled")
    justification = (justification or "").strip() if isinstance(justification, str) else ""
    if len(justification) < policy.breakglass_min_justification or len(justification) > MAX_TEXT:
        raise Problem(
            400,
            "Break-glass needs a justification.",
            slug="validation-error",
            errors={"justification": [f"Between {policy.breakglass_min_justification} and {MAX_TEXT} characters."]},
        )
    proposal = expire_if_due(proposal, now)
    if proposal.state in OPEN_STATES and proposal.proposer == actor.subject:
        detail = "Separation of duties: break-glass needs an approval that is not the proposer's."
        raise _refuse_self_approval(actor, proposal, "breakglass_approve", detail)
    with transaction.atomic():
        proposal = _lock_proposal(proposal)
        _check_if_match(if_match, proposal)
        if proposal.state not in OPEN_STATES:
            raise _invalid_transition(proposal, "break-glass apply")
        if proposal.proposer == actor.subject:
            raise Problem(
                403, "Separation of duties: break-glass needs an approval that is not the proposer's.", slug="separation-of-duties"
            )
        rbac = _rbac_decision(actor, Role.KERNEL_BREAKGLASS)
        extra = {"breakglass": True, "justification": justification}
        before, previous = proposal_state(proposal), proposal.state
        if not any(a.approver == actor.subject for a in _approvals(proposal)):
            _record_approval(proposal, actor, comment=justification, now=now, breakglass=True)
        proposal.breakglass = True  # saved by _apply_locked with the rest of the row
        applying_before: dict[str, Any] | None = None
        live: list[dict[str, Any]] = []
        if previous == ProposalState.PENDING:
            _set_state(proposal, ProposalState.APPROVED, now, save=False, approved_at=now)
            _observe_lead_time("approved", proposal, now)
            applying_before = _emit(
                proposal,
                actor,
                action="breakglass_approve",
                event_type="kernel.proposal.approved",
                previous_state=previous,
                before=before,
                rbac=rbac,
                extra=extra,
                live=live,
                send_live=False,
            )
        _apply_locked(proposal, actor, now, rbac=rbac, before=applying_before, live=live)
        _count_breakglass(proposal)
    return proposal


def rollback_proposal(
    proposal: Proposal, actor: Principal, *, reason: str, if_match: str | None = None, now: datetime | None = None
) -> Proposal:
    """Roll back an applied proposal (role kernel.admin): the applied revision's parent document
    becomes a new revision (history is never rewritten). Refused (409) when a later revision
    was applied on top, which must be rolled back first.
    """
    now = _now(now)
    _check_tenant(actor, proposal)
    _require_role(actor, Role.KERNEL_ADMIN, "rollback", tenant_id=proposal.tenant_id, resource_id=proposal.pk)
    reason = _required_reason(reason, "A reason is required to roll back.")
    with transaction.atomic():
        proposal = _lock_proposal(proposal)
        _check_if_match(if_match, proposal)
        if proposal.state != ProposalState.APPLIED or proposal.applied_revision_id is None:
            raise _invalid_transition(proposal, "roll back")
        head, applied = _lock_scope(proposal.tenant_id, proposal.scope, now, with_parent=True)
        if applied is None or applied.pk != proposal.applied_revision_id:
            current_number = applied.number if applied else 0
            raise Problem(
                409,
                f"Revision {current_number} of {proposal.scope!r} was applied after this proposal; roll that back first.",
                slug="superseded",
                state=proposal.state,
                current_revision=current_number,
            )
        proposal.applied_revision = applied  # the same row, already read: no lazy load for the state
        document = dict(applied.parent.document) if applied.parent else {}
        # The head is the applied revision (checked above), so the new one follows it.
        revision = _append_revision(head, applied, proposal, document, RevisionKind.ROLLBACK, actor, now)
        before = proposal_state(proposal)
        _set_state(
            proposal,
            ProposalState.ROLLED_BACK,
            now,
            rolled_back_at=now,
            rollback_revision=revision,
            rollback_reason=reason,
            decided_by=actor.subject,
        )
        _emit(
            proposal,
            actor,
            action="rollback",
            event_type="kernel.proposal.rolled_back",
            previous_state=ProposalState.APPLIED,
            before=before,
            rbac=_rbac_decision(actor, Role.KERNEL_ADMIN),
            extra={"reason": reason, "revision": revision.number, "restored_revision": applied.parent.number if applied.parent else 0},
        )
        tenant, scope = proposal.tenant_id, proposal.scope
        transaction.on_commit(lambda: metrics.ROLLBACKS_TOTAL.labels(tenant=tenant, scope=scope).inc(), robust=True)
    return proposal


def rollback_preview(proposal: Proposal) -> dict[str, Any]:
    """What ``rollback_proposal`` would write now, without writing: the document it restores and the revision it
    becomes, or why it would be refused (``blocked``). Read-only; the Console shows it before anyone confirms."""
    head = current_revision(proposal.tenant_id, proposal.scope)
    applied = proposal.applied_revision
    blocked = ""
    if proposal.state != ProposalState.APPLIED or applied is None:
        blocked = f"Only an applied proposal can be rolled back; this one is {proposal.get_state_display().lower()}."
    elif head is None or head.pk != applied.pk:
        blocked = f"Revision {head.number if head else 0} of {proposal.scope!r} was applied after this proposal; roll that back first."
    restored = applied.parent if applied is not None else None
    return {
        "blocked": blocked,
        "current_number": head.number if head else 0,
        "current": dict(head.document) if head else {},
        "next_number": (head.number if head else 0) + 1,
        "restored_number": restored.number if restored else 0,
        "result": dict(restored.document) if restored else {},
    }
