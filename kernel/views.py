"""Console pages of the kernel app: proposals (list, new, detail, actions) and configuration per scope.

Thin views over ``kernel.services`` (which check RBAC again). Actions POST with the CSRF
token and the ETag the page was rendered with, so a stale page gets a clear message
instead of acting on a proposal that changed. Live updates: ``kernel.consumers`` over a
WebSocket, with ``changes.json`` as the polling fallback (static/kernel/kernel.js).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib import messages
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_tables2 import RequestConfig

from aion.auth.principal import Principal
from aion.errors import DomainError, NotFound, StaleVersion
from aion.models import AuditRecord
from aion.problems import Problem
from aion.rbac import Role, role_required
from kernel import selectors, services
from kernel.choices import OPEN_STATES, ProposalState
from kernel.filtersets import ProposalFilterSet
from kernel.forms import ACTIONS, LiveQueryForm, ProposalActionForm, ProposalForm, RevisionCompareForm
from kernel.models import ConfigRevision, Proposal
from kernel.policy import LOADER, current_policy
from kernel.tables import PAGE_SIZE, ProposalTable, RevisionTable

READ_ROLES = tuple(sorted(services.READ_ROLES))


def _principal(request: HttpRequest) -> Principal:
    return request.principal  # type: ignore[attr-defined,no-any-return]


def _proposal_or_404(request: HttpRequest, proposal_id: Any) -> Proposal:
    try:
        return services.get_proposal_for_tenant(_principal(request).tenant_id, proposal_id)
    except NotFound:
        raise Http404("No such proposal.") from None


def _list_fingerprint(tenant_id: str) -> str:
    summary = Proposal.objects.for_tenant(tenant_id).aggregate(n=Count("id"), last=Max("updated_at"))
    return hashlib.sha256(f"{summary['n']}:{summary['last']}".encode()).hexdigest()[:16]


def _live_context(request: HttpRequest, *, proposal: Proposal | None = None) -> dict[str, Any]:
    tenant_id = _principal(request).tenant_id
    poll = reverse("kernel:changes")
    if proposal is not None:
        poll += f"?proposal={proposal.pk}"
    return {
        "live_ws": "/ws/kernel/proposals",
        "live_poll": poll,
        "live_fingerprint": str(proposal.version) if proposal is not None else _list_fingerprint(tenant_id),
    }


def _table_rows(queryset: Any) -> Any:
    return queryset.annotate(approval_count=Count("approvals")).only(
        "id",
        "scope",
        "target",
        "changes",
        "proposer",
        "risk_score",
        "required_approvals",
        "state",
        "breakglass",
        "created_at",
        "expires_at",
    )


@require_GET
@role_required(*READ_ROLES)
def proposals(request: HttpRequest) -> HttpResponse:
    """The proposals list: state tabs with counts, then a sortable, paginated table (kernel.tables) over the API's
    FilterSet (``?state=&scope=&proposer=&created_after=``), with relative times and TTL countdowns."""
    principal = _principal(request)
    services.expire_proposals(tenant_id=principal.tenant_id)
    base = Proposal.objects.for_tenant(principal.tenant_id)
    counts = {row["state"]: row["n"] for row in base.order_by().values("state").annotate(n=Count("id"))}
    filters = ProposalFilterSet(request.GET or None, queryset=base)
    rows = filters.qs if not filters.is_bound or filters.is_valid() else base.none()
    errors = {field: [str(e) for e in found] for field, found in filters.errors.items()} if filters.is_bound else {}
    chosen = filters.form.cleaned_data.get("state") if filters.is_bound and not errors else None
    state = chosen[0] if chosen and len(chosen) == 1 else ""
    table = ProposalTable(_table_rows(rows))
    RequestConfig(request, paginate={"per_page": PAGE_SIZE}).configure(table)
    tabs = [{"state": "", "label": "All", "count": sum(counts.values())}] + [
        {"state": value, "label": label, "count": counts.get(value, 0)} for value, label in ProposalState.choices
    ]
    return render(
        request,
        "kernel/proposals.html",
        {
            "tabs": tabs,
            "state": state,
            "table": table,
            "filters": filters,
            "filter_errors": errors,
            "can_propose": principal.has_role(Role.KERNEL_PROPOSER),
            "is_admin": principal.has_role(Role.KERNEL_ADMIN),
            "inbox_count": selectors.awaiting_approval(principal).count(),
            **_live_context(request),
        },
    )


@require_GET
@role_required(Role.KERNEL_ADMIN)
def inbox(request: HttpRequest) -> HttpResponse:
    """Awaiting my approval: pending proposals this admin may approve (not their own, not approved by them yet).
    An auditor may look (read access everywhere); nothing ever awaits them."""
    principal = _principal(request)
    services.expire_proposals(tenant_id=principal.tenant_id)
    table = ProposalTable(selectors.awaiting_approval(principal), order_by=("expires_at",))
    table.empty_text = (
        "Nothing awaits your approval." if principal.has_role(Role.KERNEL_ADMIN) else "Only kernel admins approve; nothing awaits you."
    )
    RequestConfig(request, paginate={"per_page": PAGE_SIZE}).configure(table)
    return render(request, "kernel/inbox.html", {"table": table, **_live_context(request)})


@require_http_methods(["GET", "POST"])
@role_required(Role.KERNEL_PROPOSER)
def proposal_new(request: HttpRequest) -> HttpResponse:
    """Propose a change (kernel.forms.ProposalForm; the rules are the service's). ``from`` is the value of the revision
    the form showed, so drift is caught on submit. Changing the scope re-renders with what was typed; an auditor
    (read access) sees the form but is told they cannot submit."""
    principal = _principal(request)
    policy = current_policy()
    if policy is None:
        raise Problem(503, "The kernel guardrail policy is not loaded; see /readyz.", slug="policy-unavailable")
    can_submit = principal.has_role(Role.KERNEL_PROPOSER)
    refresh = request.method == "GET" or "refresh" in request.POST
    if refresh:
        # A first visit or a scope change: keep whatever was typed, show the scope's current revision, no errors yet.
        initial: dict[str, Any] = {"risk_score": 0.2, **(request.POST if request.method == "POST" else request.GET).dict()}
        initial.pop("csrfmiddlewaretoken", None)
        if initial.get("scope") not in policy.scopes:
            initial["scope"] = sorted(policy.scopes)[0]
        current = services.current_revision(principal.tenant_id, initial["scope"])
        initial["base_revision"] = current.number if current else 0
        form = ProposalForm(initial=initial, policy=policy, tenant_id=principal.tenant_id)
    else:
        form = ProposalForm(request.POST, policy=policy, tenant_id=principal.tenant_id)
        proposal = form.submit(principal)
        if proposal is not None:
            messages.success(request, "Proposal submitted; it now waits for approval.")
            return redirect("kernel:proposal", proposal_id=proposal.pk)
        if form.drifted:
            # Re-base on the current revision: the person has been told to review the current values.
            current = services.current_revision(principal.tenant_id, form.scope_name())
            form.data = request.POST.copy()
            form.data["base_revision"] = str(current.number if current else 0)
    scope = form.scope_name()
    return render(
        request,
        "kernel/proposal_new.html",
        {
            "form": form,
            "scope": scope,
            "policy": policy,
            "base_revision": form.base_number(),
            "document": sorted(form.base_document().items()),
            "keys": form.key_help(),
            "can_submit": can_submit,
            "refresh_method": "post" if can_submit else "get",
        },
    )


def _action_buttons(principal: Principal, proposal: Proposal, head_number: int = 0) -> list[dict[str, Any]]:
    """The buttons this user sees, each disabled (with why) on their own proposal, with what confirming does."""
    own = proposal.proposer == principal.subject
    own_tip = "You proposed this; separation of duties needs someone else."
    buttons: list[dict[str, Any]] = []
    if principal.has_role(Role.KERNEL_ADMIN):
        if proposal.state == ProposalState.PENDING:
            buttons.append({"action": "approve", "label": "Approve", "field": "comment", "required": False})
        if proposal.state in OPEN_STATES:
            buttons.append({"action": "reject", "label": "Reject", "field": "reason", "required": True, "danger": True})
        if proposal.state == ProposalState.APPROVED:
            buttons.append({"action": "apply", "label": "Apply", "field": "", "required": False})
        if proposal.state == ProposalState.APPLIED:
            buttons.append({"action": "rollback", "label": "Rollback", "field": "reason", "required": True, "danger": True})
    if principal.has_role(Role.KERNEL_BREAKGLASS) and proposal.state in OPEN_STATES:
        buttons.append({"action": "breakglass", "label": "Break-glass apply", "field": "justification", "required": True, "danger": True})
    approvals = list(proposal.approvals.all())
    mine = any(a.approver == principal.subject for a in approvals)
    for button in buttons:
        button["consequence"] = _consequence(button["action"], proposal, len(approvals), head_number)
        button["disabled"] = own
        button["tooltip"] = own_tip if own else ""
        if button["action"] == "approve" and mine and not own:
            # Each approver counts once: a second click could only be refused.
            button["disabled"] = True
            button["tooltip"] = (
                f"You have approved this already ({len(approvals)} of {proposal.required_approvals}); "
                f"{_waiting_for(proposal.required_approvals - len(approvals))}: each admin counts once."
            )
    return buttons


def _consequence(action: str, proposal: Proposal, approvals: int, head_number: int) -> str:
    """What confirming ACTION does, in the dialog that asks (issue 16 §2: restate the consequence)."""
    scope = proposal.scope
    if action == "approve":
        if approvals + 1 < proposal.required_approvals:
            missing = proposal.required_approvals - approvals - 1
            more = "one more admin" if missing == 1 else f"{missing} more admins"
            return f"This is approval {approvals + 1} of {proposal.required_approvals}; it then waits for {more}."
        if proposal.auto_apply:
            return f"This approval applies it now as revision {head_number + 1} of {scope}."
        return "This approval completes the approvals; it then waits for an admin to apply it."
    if action == "apply":
        return f"Applying writes revision {head_number + 1} of {scope} now."
    if action == "breakglass":
        return f"Break-glass skips the remaining approvals and applies it now as revision {head_number + 1} of {scope} (audited)."
    if action == "reject":
        return "Rejecting closes the proposal; nothing is applied."
    if action == "rollback":
        return f"Rolling back writes revision {head_number + 1} of {scope}, restoring the document shown below."
    return ""


def _waiting_for(missing: int) -> str:
    return "waiting for one more admin" if missing == 1 else f"waiting for {missing} more admins"


def _history_rows(proposal: Proposal) -> list[dict[str, Any]]:
    """The audit trail, each row saying what changed: a state transition, or an approval counted while still pending."""
    records = AuditRecord.objects.filter(
        tenant_id=proposal.tenant_id, resource_type=services.RESOURCE_TYPE, resource_id=str(proposal.pk)
    ).order_by("created_at", "id")
    rows = []
    for record in records:
        metadata = record.metadata if isinstance(record.metadata, dict) else {}
        state = (record.after or {}).get("state") if isinstance(record.after, dict) else None
        previous = metadata.get("previous_state")
        if record.action.endswith(".approve") and state == previous and "approvals" in metadata:
            outcome = f"approval {metadata['approvals']} of {proposal.required_approvals} recorded; still pending"
        elif state and state != previous:
            outcome = f"→ {ProposalState(state).label.lower() if state in ProposalState.values else state}"
        else:
            outcome = ""
        rows.append({"record": record, "metadata": metadata, "outcome": outcome})
    return rows


def _action_message(action: str, proposal: Proposal) -> str:
    """What the action did, in the words of the page it returns to."""
    if action in ("approve", "breakglass") and proposal.state == ProposalState.PENDING:
        count = proposal.approvals.count()
        return f"Approved ({count} of {proposal.required_approvals}); {_waiting_for(proposal.required_approvals - count)}."
    if proposal.state == ProposalState.APPLIED and proposal.applied_revision:
        return f"Done: the proposal is now applied as revision {proposal.applied_revision.number} of {proposal.scope}."
    if proposal.state == ProposalState.ROLLED_BACK and proposal.rollback_revision:
        return f"Done: the proposal is now rolled back as revision {proposal.rollback_revision.number} of {proposal.scope}."
    if proposal.state == ProposalState.APPROVED:
        return "Approved; it waits to be applied."
    return f"Done: the proposal is now {proposal.get_state_display().lower()}."


@require_GET
@role_required(*READ_ROLES)
def proposal_detail(request: HttpRequest, proposal_id: Any) -> HttpResponse:
    """Side-by-side diff, risk, TTL countdown, approvals, history and the action buttons."""
    principal = _principal(request)
    proposal = services.expire_if_due(_proposal_or_404(request, proposal_id))
    history = _history_rows(proposal)
    head_number = getattr(services.current_revision(proposal.tenant_id, proposal.scope), "number", 0)
    preview = services.rollback_preview(proposal) if proposal.state == ProposalState.APPLIED else None
    return render(
        request,
        "kernel/proposal_detail.html",
        {
            "proposal": proposal,
            "diff": services.proposal_diff(proposal),
            "current_revision_number": head_number,
            "approvals": list(proposal.approvals.all()),
            "history": history,
            "buttons": _action_buttons(principal, proposal, head_number),
            "rollback": preview,
            "rollback_diff": _document_diff(preview["current"], preview["result"]) if preview else [],
            "action_form": ProposalActionForm(action="approve"),
            "etag": services.proposal_etag(proposal),
            "open": proposal.state in OPEN_STATES,
            **_live_context(request, proposal=proposal),
        },
    )


@require_GET
@role_required(Role.KERNEL_ADMIN)
def proposal_rollback(request: HttpRequest, proposal_id: Any) -> HttpResponse:
    """Roll back, from the scope's revision list: the document the rollback would restore, before confirming.
    An auditor (read access everywhere) sees the preview without the form."""
    proposal = _proposal_or_404(request, proposal_id)
    preview = services.rollback_preview(proposal)
    return render(
        request,
        "kernel/proposal_rollback.html",
        {
            "proposal": proposal,
            "rollback": preview,
            "rollback_diff": _document_diff(preview["current"], preview["result"]),
            "etag": services.proposal_etag(proposal),
            "form": ProposalActionForm(action="rollback"),
            "can_rollback": _principal(request).has_role(Role.KERNEL_ADMIN),
        },
    )


@require_POST
@role_required(Role.KERNEL_ADMIN, Role.KERNEL_BREAKGLASS)
def proposal_action(request: HttpRequest, proposal_id: Any, action: str) -> HttpResponse:
    """Approve / reject / apply / rollback / break-glass from the confirmation dialog (kernel.forms.ProposalActionForm)."""
    if action not in ACTIONS:
        raise Http404("No such action.")
    principal = _principal(request)
    proposal = _proposal_or_404(request, proposal_id)
    form = ProposalActionForm(request.POST, action=action)
    try:
        proposal = form.perform(proposal, principal)
    except DomainError as problem:
        if isinstance(problem, StaleVersion):
            current = Proposal.objects.get(pk=proposal.pk)
            messages.error(
                request,
                f"This proposal changed while you were looking at it (it is now {current.get_state_display()}, "
                f"version {current.version}). Nothing was done: review the latest state below and try again.",
            )
        else:
            detail = str(problem.detail)
            if problem.errors:
                detail += " " + " ".join(f"{field}: {'; '.join(msgs)}" for field, msgs in problem.errors.items())
            messages.error(request, detail)
        return redirect("kernel:proposal", proposal_id=proposal.pk)
    messages.success(request, _action_message(action, proposal))
    return redirect("kernel:proposal", proposal_id=proposal.pk)


@require_GET
@role_required(*READ_ROLES)
def changes(request: HttpRequest) -> JsonResponse:
    """Polling fallback for live updates: a fingerprint of the tenant's proposals (or of one proposal)."""
    principal = _principal(request)
    query = LiveQueryForm(request.GET)
    if not query.is_valid():
        raise Http404("No such proposal.")
    proposal_id = query.cleaned_data["proposal"]
    if proposal_id:
        proposal = _proposal_or_404(request, proposal_id)
        proposal = services.expire_if_due(proposal)
        return JsonResponse({"fingerprint": str(proposal.version), "state": proposal.state})
    services.expire_proposals(tenant_id=principal.tenant_id)
    return JsonResponse({"fingerprint": _list_fingerprint(principal.tenant_id)})


@require_GET
@role_required(*READ_ROLES)
def config_index(request: HttpRequest) -> HttpResponse:
    """Every scope: the policy's and any with revisions, with its current revision."""
    principal = _principal(request)
    policy = current_policy()
    names = set(policy.scopes) if policy else set()
    names |= set(ConfigRevision.objects.for_tenant(principal.tenant_id).values_list("scope", flat=True).distinct())
    scopes = []
    for name in sorted(names):
        revision = services.current_revision(principal.tenant_id, name)
        description = policy.scopes[name].description if policy and name in policy.scopes else ""
        scopes.append({"name": name, "revision": revision, "description": description})
    return render(request, "kernel/config_index.html", {"scopes": scopes, "policy_health": LOADER.health()})


def _document_diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        status = "added" if key not in old else "removed" if key not in new else "same" if services.same_value(before, after) else "changed"
        rows.append({"key": key, "old": before, "new": after, "status": status})
    return rows


@require_GET
@role_required(*READ_ROLES)
def config_scope(request: HttpRequest, scope: str) -> HttpResponse:
    """One scope: the current document, its revisions, and the diff between any two (``?a=&b=``)."""
    principal = _principal(request)
    queryset = ConfigRevision.objects.for_tenant(principal.tenant_id).filter(scope=scope).select_related("parent")
    revisions = list(queryset.order_by("-number"))
    policy = current_policy()
    if not revisions and not (policy and scope in policy.scopes):
        raise Http404("No such scope.")
    by_number = {r.number: r for r in revisions}
    current = revisions[0] if revisions else None
    compare = RevisionCompareForm(request.GET or None, numbers=[0, *sorted(by_number)])
    a, b = compare.pair(current.number if current else 0)
    old = by_number[a].document if a in by_number else {}
    new = by_number[b].document if b in by_number else {}
    table = RevisionTable(queryset.defer("document"), head=current, can_rollback=principal.has_role(Role.KERNEL_ADMIN))
    RequestConfig(request, paginate={"per_page": PAGE_SIZE}).configure(table)
    return render(
        request,
        "kernel/config_scope.html",
        {
            "scope": scope,
            "current": current,
            "document": sorted((current.document if current else {}).items()),
            "table": table,
            "compare": compare,
            "a": a,
            "b": b,
            "diff": _document_diff(old, new),
        },
    )
