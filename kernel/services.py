"""Every state change of kernel proposals and configuration revisions, in one place.

The API, the Console, signed webhooks (hooks app), beat jobs and management commands all
call these functions; views stay thin. Each function takes the acting ``Principal`` and
checks RBAC itself, so no caller can skip it. Each transition opens the same way
(``_transition``: tenant, role, expiry, the proposal row locked with ``select_for_update``,
If-Match, the state), is atomic (applies and rollbacks also lock the scope head, so two
applies on one scope serialise), writes an audit record (before and after) and publishes
the full proposal state to ``kernel.proposals`` (key = proposal id, event type
``kernel.proposal.<new state>``) in the same transaction.

Refusals are ``aion.errors`` kinds (``kernel.errors`` names the kernel's reasons); nothing
here knows HTTP: the API maps them once (``aion.problems``), the Console shows their
``detail``. How a proposal is shown is ``kernel.presenters``; the shared reads are
``kernel.selectors``; document hashing is ``kernel.documents`` (re-exported here).

Stable signatures used by other apps (hooks, module hosts)::

    approve_proposal(proposal, actor, *, comment="", if_match=None, now=None) -> Proposal
    reject_proposal(proposal, actor, *, reason, if_match=None, now=None) -> Proposal
    get_proposal_for_tenant(tenant_id, proposal_id) -> Proposal   # ProposalNotFound otherwise
    current_revision(tenant_id, scope) -> ConfigRevision | None
    current_document(tenant_id, scope) -> dict
    document_sha256(document) -> str
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import Prefetch
from django.utils import timezone

from aion import audit
from aion.auth.principal import Principal, system_principal
from aion.errors import Conflict, InvalidInput, NotAllowed
from aion.incidents import record_incident
from aion.models import AuditResult, IncidentKind
from aion.outbox import publish
from aion.roles import Role
from aion.topics import KERNEL_PROPOSALS
from kernel import metrics
from kernel.choices import OPEN_STATES, RESOURCE_TYPE, REVISION_RESOURCE_TYPE, ProposalState, RevisionKind
from kernel.documents import canonical_json, content_hash_for, document_sha256, same_value
from kernel.errors import (
    AlreadyApproved,
    BreakglassDisabled,
    ConfigDrift,
    InvalidTransition,
    PolicyUnavailable,
    PolicyViolation,
    ProposalChanged,
    ProposalNotFound,
    SeparationOfDuties,
    Superseded,
)
from kernel.live import notify_tenant
from kernel.models import Approval, ConfigRevision, ConfigScope, Proposal
from kernel.policy import Policy, current_policy
from kernel.presenters import proposal_diff, proposal_etag, proposal_state
from kernel.selectors import approvals_of, current_document, current_revision, get_proposal_for_tenant

# Names other code reads from here (kernel.views, kernel.hosts, hooks): defined in the modules the
# split made, kept importable from the service layer.
__all__ = [
    "MAX_CHANGES",
    "MAX_TEXT",
    "READ_ROLES",
    "RESOURCE_TYPE",
    "REVISION_RESOURCE_TYPE",
    "apply_proposal",
    "approve_proposal",
    "breakglass_approve",
    "canonical_json",
    "content_hash_for",
    "current_document",
    "current_revision",
    "document_sha256",
    "expire_if_due",
    "expire_proposals",
    "get_proposal_for_tenant",
    "proposal_diff",
    "proposal_etag",
    "reject_proposal",
    "rollback_proposal",
    "same_value",
    "submit_proposal",
]

# Roles that may read proposals and configuration (writes need the named role).
READ_ROLES = frozenset({Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER, Role.KERNEL_BREAKGLASS, Role.AUDITOR})
MAX_CHANGES = 100
MAX_TEXT = 4000


# --- the opening every transition shares ---------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


def _check_if_match(if_match: str | None, proposal: Proposal) -> None:
    """``ProposalChanged`` when the caller's ETag (If-Match or the Console's hidden field) is stale."""
    if not if_match:
        return
    current = proposal_etag(proposal)
    candidates = {c.strip()[2:] if c.strip().startswith("W/") else c.strip() for c in str(if_match).split(",")}
    if "*" in candidates or current in candidates:
        return
    raise ProposalChanged(
        "The proposal changed since you read it; reload it and try again.",
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
    """RBAC inside the action: a refused attempt is audited (result=denied) and refused (``NotAllowed``)."""
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
    raise NotAllowed(f"This action requires the role {str(role)!r}.", required_role=str(role))


def _refuse_self_approval(actor: Principal, proposal: Proposal, action: str, detail: str) -> SeparationOfDuties:
    """The proposer approving their own proposal: audited (denied) and a ``self_approval`` incident, then refused.

    Called before the proposal lock (the proposer never changes), so the record commits although the action fails."""
    with transaction.atomic():
        audit.record(
            f"{RESOURCE_TYPE}.{action}", RESOURCE_TYPE, proposal.pk, actor=actor, tenant_id=proposal.tenant_id,
            result=AuditResult.DENIED, metadata={"reason": "separation_of_duties", "proposer": proposal.proposer},
        )  # fmt: skip
        record_incident(
            IncidentKind.SELF_APPROVAL, action, tenant_id=proposal.tenant_id, actor=actor,
            details={"proposal_id": str(proposal.pk), "proposer": proposal.proposer, "action": action},
        )  # fmt: skip
    return SeparationOfDuties(detail)


def _required_policy() -> Policy:
    policy = current_policy()
    if policy is None:
        raise PolicyUnavailable("No valid kernel guardrail policy is loaded; see /readyz (kernel_policy).")
    return policy


@contextmanager
def _transition(
    proposal: Proposal,
    actor: Principal,
    *,
    action: str,
    role: str,
    states: tuple[str, ...],
    verb: str,
    if_match: str | None,
    now: datetime,
    check_input: Callable[[], None] | None = None,
    not_the_proposer: str = "",
) -> Iterator[Proposal]:
    """The opening of every transition of an existing proposal; the body runs on the locked proposal it yields.

    In order: the actor's tenant (another tenant's proposal is ``ProposalNotFound``), ACTION's ROLE
    (audited when refused), CHECK_INPUT (the request's own rules: reason, comment, justification, the
    policy's switches), expiry (an open proposal past its TTL is expired in its own transaction), the
    self-approval refusal when NOT_THE_PROPOSER gives its detail (audited and an incident, committed
    before anything is locked), then one transaction: the proposal row locked with
    ``select_for_update`` (alone, no join) and its approvals read under the lock, IF_MATCH, and the
    state (one of STATES, else ``InvalidTransition`` to VERB). The body's writes share that transaction.
    """
    if actor.tenant_id != proposal.tenant_id:
        raise ProposalNotFound("No such proposal.")
    _require_role(actor, role, action, tenant_id=proposal.tenant_id, resource_id=proposal.pk)
    if check_input is not None:
        check_input()
    proposal = expire_if_due(proposal, now)
    if not_the_proposer and proposal.state in states and proposal.proposer == actor.subject:
        raise _refuse_self_approval(actor, proposal, action, not_the_proposer)
    with transaction.atomic():
        locked = _lock_proposal(proposal)
        _check_if_match(if_match, locked)
        if locked.state not in states:
            raise InvalidTransition(f"Cannot {verb} a proposal in state {locked.state!r}.", state=locked.state)
        if not_the_proposer and locked.proposer == actor.subject:
            raise SeparationOfDuties(not_the_proposer)
        yield locked


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
    justification is mandatory. Policy breaches are ``PolicyViolation`` with field errors; a ``from``
    that differs from the current value is ``ConfigDrift`` naming the drifted keys.
    """
    now = _now(now)
    tenant_id = actor.tenant_id
    required_role = Role.KERNEL_BREAKGLASS if breakglass else Role.KERNEL_PROPOSER
    _require_role(actor, required_role, "breakglass_submit" if breakglass else "submit", tenant_id=tenant_id)
    policy = _required_policy()
    if breakglass and not policy.breakglass_enabled:
        raise BreakglassDisabled("Break-glass is disabled by the kernel policy.")

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
        raise PolicyViolation("The proposal breaks the guardrail policy.", errors=errors)

    with transaction.atomic():
        base = current_revision(tenant_id, scope)
        document = dict(base.document) if base else {}
        drifted = [
            {"key": c["key"], "from": c["from"], "current": document.get(c["key"])}
            for c in normalised
            if not same_value(document.get(c["key"]), c["from"])
        ]
        if drifted:
            raise ConfigDrift(
                "'from' differs from the current configuration for: " + ", ".join(d["key"] for d in drifted),
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
    leaves it ``failed``). ``if_match`` is the ETag the caller read (``ProposalChanged`` when stale). Called
    by the API, the Console and signed webhooks (actor kind ``hook``). Returns the proposal.
    """
    now = _now(now)
    comment = _text(comment)
    with _transition(
        proposal,
        actor,
        action="approve",
        role=Role.KERNEL_ADMIN,
        states=(ProposalState.PENDING,),
        verb="approve",
        if_match=if_match,
        now=now,
        check_input=lambda: _check_length("comment", comment, "The comment is too long."),
        not_the_proposer="Separation of duties: the proposer cannot approve their own proposal.",
    ) as proposal:
        if any(a.approver == actor.subject for a in approvals_of(proposal)):
            raise AlreadyApproved("You have already approved this proposal; each approver counts once.", state=proposal.state)
        rbac = _rbac_decision(actor, Role.KERNEL_ADMIN)
        before = proposal_state(proposal)
        _record_approval(proposal, actor, comment=comment, now=now, breakglass=False)
        count = len(approvals_of(proposal))  # read under the proposal lock, plus this one
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
        # constraint still fires, the ``AlreadyApproved`` leaves the caller's transaction, which rolls back whole.
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
        raise AlreadyApproved("You have already approved this proposal; each approver counts once.") from None
    proposal.approval_list = [*approvals_of(proposal), approval]  # type: ignore[attr-defined]


def _text(value: Any) -> str:
    """VALUE stripped ("" when it is not a string): a comment, a reason or a justification as stored."""
    return value.strip() if isinstance(value, str) else ""


def _check_length(field: str, text: str, too_long_detail: str) -> None:
    if len(text) > MAX_TEXT:
        raise InvalidInput(too_long_detail, errors={field: [f"At most {MAX_TEXT} characters."]})


def _check_reason(reason: str, missing_detail: str) -> None:
    """A reason (reject, rollback) is required, and at most MAX_TEXT characters."""
    if not reason:
        raise InvalidInput(missing_detail, errors={"reason": ["A reason is required."]})
    _check_length("reason", reason, "The reason is too long.")


def reject_proposal(
    proposal: Proposal, actor: Principal, *, reason: str, if_match: str | None = None, now: datetime | None = None
) -> Proposal:
    """Reject a pending or approved proposal (role kernel.admin); REASON is required (``InvalidInput`` otherwise)."""
    now = _now(now)
    reason = _text(reason)
    with _transition(
        proposal,
        actor,
        action="reject",
        role=Role.KERNEL_ADMIN,
        states=OPEN_STATES,
        verb="reject",
        if_match=if_match,
        now=now,
        check_input=lambda: _check_reason(reason, "A reason is required to reject a proposal."),
    ) as proposal:
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
        # rolled back (nothing half-done) and the caller is told to retry (``Conflict``), never a crash.
        raise Conflict(
            f"Revision {number} of {proposal.scope!r} was written concurrently; read the configuration and try again.",
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
    ``failed`` state with the drifted keys, changes nothing, and then raises ``ConfigDrift``.
    """
    now = _now(now)
    with _transition(
        proposal,
        actor,
        action="apply",
        role=Role.KERNEL_ADMIN,
        states=(ProposalState.APPROVED,),
        verb="apply",
        if_match=if_match,
        now=now,
    ) as proposal:
        _apply_locked(proposal, actor, now, rbac=_rbac_decision(actor, Role.KERNEL_ADMIN))
    if proposal.state == ProposalState.FAILED:
        raise ConfigDrift(
            "The configuration drifted since submission; the proposal is now failed and nothing changed.",
            state=proposal.state,
            drifted_keys=proposal.drifted_keys,
        )
    return proposal


def breakglass_approve(
    proposal: Proposal, actor: Principal, *, justification: str, if_match: str | None = None, now: datetime | None = None
) -> Proposal:
    """Break-glass (role kernel.breakglass): one approval that is not the proposer's, then apply at once."""
    now = _now(now)
    justification = _text(justification)
    with _transition(
        proposal,
        actor,
        action="breakglass_approve",
        role=Role.KERNEL_BREAKGLASS,
        states=OPEN_STATES,
        verb="break-glass apply",
        if_match=if_match,
        now=now,
        check_input=lambda: _check_breakglass_justification(justification),
        not_the_proposer="Separation of duties: break-glass needs an approval that is not the proposer's.",
    ) as proposal:
        rbac = _rbac_decision(actor, Role.KERNEL_BREAKGLASS)
        extra = {"breakglass": True, "justification": justification}
        before, previous = proposal_state(proposal), proposal.state
        if not any(a.approver == actor.subject for a in approvals_of(proposal)):
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


def _check_breakglass_justification(justification: str) -> None:
    """Break-glass is on in the policy, and the justification's length within its bounds."""
    policy = _required_policy()
    if not policy.breakglass_enabled:
        raise BreakglassDisabled("Break-glass is disabled by the kernel policy.")
    if len(justification) < policy.breakglass_min_justification or len(justification) > MAX_TEXT:
        raise InvalidInput(
            "Break-glass needs a justification.",
            errors={"justification": [f"Between {policy.breakglass_min_justification} and {MAX_TEXT} characters."]},
        )


def rollback_proposal(
    proposal: Proposal, actor: Principal, *, reason: str, if_match: str | None = None, now: datetime | None = None
) -> Proposal:
    """Roll back an applied proposal (role kernel.admin): the applied revision's parent document
    becomes a new revision (history is never rewritten). Refused when a later revision
    was applied on top (``Superseded``), which must be rolled back first.
    """
    now = _now(now)
    reason = _text(reason)
    with _transition(
        proposal,
        actor,
        action="rollback",
        role=Role.KERNEL_ADMIN,
        states=(ProposalState.APPLIED,),
        verb="roll back",
        if_match=if_match,
        now=now,
        check_input=lambda: _check_reason(reason, "A reason is required to roll back."),
    ) as proposal:
        if proposal.applied_revision_id is None:  # an applied proposal always has one; never trust that blindly
            raise InvalidTransition(f"Cannot roll back a proposal in state {proposal.state!r}.", state=proposal.state)
        head, applied = _lock_scope(proposal.tenant_id, proposal.scope, now, with_parent=True)
        if applied is None or applied.pk != proposal.applied_revision_id:
            current_number = applied.number if applied else 0
            raise Superseded(
                f"Revision {current_number} of {proposal.scope!r} was applied after this proposal; roll that back first.",
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
