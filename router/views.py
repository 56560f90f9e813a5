"""Console Router page: active policy, revision diffs, Reload/Rollback, p95 chart, decision mix, live tasks."""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from aion.errors import DomainError
from aion.forms import refusal_text
from aion.problems import Problem  # until router.services raises aion.errors (issue 19 §3)
from aion.rbac import Role, role_required
from router import services
from router.forms import CompareForm, RollbackForm
from router.models import PolicyRevision, PolicyState, RuntimeSample, Task
from router.policy import PolicyInvalid
from router.policy_store import active_policy
from router.stats import percentile

CHART_HOURS = 6
CHART_BUCKET_MINUTES = 10


DIFF_CONTEXT_LINES = 3  # unchanged lines around each change: the page shows hunks, not the whole file


def _diff_lines(old: str, new: str, old_name: str, new_name: str) -> list[dict[str, str]]:
    lines = []
    diff = difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile=old_name, tofile=new_name, lineterm="", n=DIFF_CONTEXT_LINES)
    for line in diff:
        if line.startswith(("+++", "---")):
            kind = "meta"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "new"
        elif line.startswith("-"):
            kind = "old"
        else:
            kind = "same"
        lines.append({"kind": kind, "text": line})
    return lines


def _rollback_choices(active: PolicyRevision | None) -> list[dict[str, Any]]:
    """Every stored revision for the Rollback menu, newest first; the active one and copies of it cannot be chosen."""
    choices = []
    for revision in PolicyRevision.objects.order_by("-number").only("number", "sha256", "source", "author", "created_at", "restored_from"):
        is_active = active is not None and revision.number == active.number
        same = active is not None and not is_active and revision.sha256 == active.sha256
        note = " (active)" if is_active else " (same content as the active one)" if same else ""
        label = f"r{revision.number} · {revision.get_source_display()} · {revision.created_at:%Y-%m-%d %H:%M} · {revision.author}{note}"
        choices.append({"number": revision.number, "label": label, "disabled": is_active or same})
    return choices


@require_GET
@role_required(Role.ROUTER_ADMIN)
def index(request: HttpRequest) -> HttpResponse:
    error = ""
    try:
        active_policy(max_age_seconds=0)  # the revision active now; with none stored, checks the file (stores nothing)
    except PolicyInvalid as exc:
        error = str(exc)
    active_number = PolicyState.objects.filter(pk=1).values_list("active_number", flat=True).first() or 0
    active = PolicyRevision.objects.filter(number=active_number).first()
    history = list(PolicyRevision.objects.order_by("-number")[:30])
    compare = CompareForm(request.GET)
    wanted = compare.cleaned_data if compare.is_valid() else {}  # a bad number: the default comparison
    compare_a, compare_b = wanted.get("a"), wanted.get("b")
    if compare_b is None and active:
        compare_b = active.number
    if compare_a is None and compare_b is not None:
        compare_a = compare_b - 1
    left = PolicyRevision.objects.filter(number=compare_a).first() if compare_a else None
    right = PolicyRevision.objects.filter(number=compare_b).first() if compare_b else None
    diff = _diff_lines(left.content if left else "", right.content if right else "", f"r{compare_a}", f"r{compare_b}") if right else []
    rollback_choices = _rollback_choices(active)
    return render(
        request,
        "router/index.html",
        {
            "active": active,
            "history": history,
            "diff": diff,
            "compare_a": compare_a,
            "compare_b": compare_b,
            "error": error,
            "rollback_choices": rollback_choices,
            "can_roll_back": any(not choice["disabled"] for choice in rollback_choices),
            "can_write": Role.ROUTER_ADMIN.value in request.principal.roles,  # type: ignore[attr-defined]
        },
    )


def _p95_series(now: Any) -> dict[str, list[dict[str, Any]]]:
    since = now - timedelta(hours=CHART_HOURS)
    rows = (
        RuntimeSample.objects.filter(created_at__gte=since).values_list("target", "created_at", "latency_ms").order_by("created_at")[:20000]
    )
    buckets: dict[str, dict[int, list[float]]] = {}
    for target, created_at, latency in rows:
        slot = int((created_at - since).total_seconds() // (CHART_BUCKET_MINUTES * 60))
        buckets.setdefault(target, {}).setdefault(slot, []).append(float(latency))
    series: dict[str, list[dict[str, Any]]] = {}
    for target, slots in buckets.items():
        series[target] = [
            {"t": (since + timedelta(minutes=slot * CHART_BUCKET_MINUTES)).isoformat(), "p95_ms": percentile(values, 0.95)}
            for slot, values in sorted(slots.items())
        ]
    return series


@require_GET
@role_required(Role.ROUTER_ADMIN)
def data(request: HttpRequest) -> JsonResponse:
    """The live parts of the page (polled by its script): tasks, p95 series and decision mix."""
    tenant_id = request.principal.tenant_id  # type: ignore[attr-defined]
    now = timezone.now()
    tasks = Task.objects.for_tenant(tenant_id).order_by("-created_at")[:25]
    mix = (
        Task.objects.for_tenant(tenant_id)
        .filter(created_at__gte=now - timedelta(hours=24))
        .exclude(strategy="")
        .values("route", "strategy")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return JsonResponse(
        {
            "now": now.isoformat(),
            "tasks": [{**services.task_state(t), "created_at": t.created_at.isoformat(), "strategy": t.strategy} for t in tasks],
            "p95": _p95_series(now),
            "decision_mix": [{"route": m["route"], "strategy": m["strategy"], "count": m["n"]} for m in mix],
        }
    )


@require_POST
@role_required(Role.ROUTER_ADMIN)
def reload(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    try:
        revision, created = services.reload_policy(actor=principal, tenant_id=principal.tenant_id)
    except PolicyInvalid as exc:
        messages.error(request, f"The policy file is invalid; the active policy is unchanged. {exc}")
    else:
        messages.success(
            request, f"Activated revision r{revision.number}." if created else f"No change: r{revision.number} is already active."
        )
    return HttpResponseRedirect(request.path.rsplit("reload", 1)[0])


@require_POST
@role_required(Role.ROUTER_ADMIN)
def rollback(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    target = request.path.rsplit("rollback", 1)[0]
    active_number = PolicyState.objects.filter(pk=1).values_list("active_number", flat=True).first() or 0
    form = RollbackForm(request.POST, choices=_rollback_choices(PolicyRevision.objects.filter(number=active_number).first()))
    if not form.is_valid():
        messages.error(request, f"Rollback refused: {' '.join(str(e) for e in form.errors['revision'])}")
        return HttpResponseRedirect(target)
    number = form.cleaned_data["revision"]
    try:
        revision, created = services.rollback_policy(number, actor=principal, tenant_id=principal.tenant_id)
    except (PolicyInvalid, DomainError, Problem) as exc:
        messages.error(request, f"Rollback refused: {refusal_text(exc)}")
    else:
        messages.success(
            request, f"Rolled back to r{number} as r{revision.number}." if created else f"r{number} has the active content already."
        )
    return HttpResponseRedirect(target)
