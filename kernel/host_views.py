"""Console pages of hosts and rollout (issue 17 §2): the hosts list, and the live per-host rollout panel that the
proposal detail and the scope page include (``templates/kernel/_rollout.html``, polled by htmx every 2 s).

Thin views over ``kernel.hosts``; the list filters with the API's ``HostFilterSet``.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_GET

from aion.auth.principal import Principal
from aion.rbac import role_required
from kernel import hosts, services
from kernel.choices import HostState
from kernel.host_filtersets import HostFilterSet
from kernel.models import ConfigScope, Proposal

READ_ROLES = tuple(sorted(services.READ_ROLES))
PAGE_SIZE = 50


def _principal(request: HttpRequest) -> Principal:
    return request.principal  # type: ignore[attr-defined,no-any-return]


@require_GET
@role_required(*READ_ROLES)
def hosts_page(request: HttpRequest) -> HttpResponse:
    """Every host of the tenant with its live state, filtered by pool, state and name."""
    tenant_id = _principal(request).tenant_id
    # The rule of console.listing (not importable across apps): invalid filters show their errors and an empty page.
    filterset = HostFilterSet(request.GET or None, queryset=hosts.host_rows(tenant_id))
    errors: dict[str, list[str]] = {}
    if filterset.is_bound and not filterset.is_valid():
        errors = {name: [str(e) for e in found] for name, found in filterset.errors.items()}
        queryset = hosts.host_rows(tenant_id).none()
    else:
        queryset = filterset.qs
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "kernel/hosts.html",
        {
            "page": page,
            "rows": hosts.host_states(page.object_list, tenant_id=tenant_id),
            "errors": errors,
            "query": query.urlencode(),
            "states": [s.value for s in HostState],
            "filters": request.GET,
            "wanted_states": request.GET.getlist("state"),
        },
    )


def _render_rollout(request: HttpRequest, rollout: dict[str, Any] | None, **context: Any) -> HttpResponse:
    return render(request, "kernel/_rollout_body.html", {"rollout": rollout, "now": timezone.now(), **context})


@require_GET
@role_required(*READ_ROLES)
def proposal_rollout(request: HttpRequest, proposal_id: Any) -> HttpResponse:
    """The rollout panel of a proposal: its latest revision's hosts, and whether its rollback is complete."""
    queryset = Proposal.objects.select_related("applied_revision", "rollback_revision")
    proposal = get_object_or_404(queryset, tenant_id=_principal(request).tenant_id, pk=proposal_id)  # another tenant's: 404
    return _render_rollout(request, hosts.proposal_rollout(proposal), proposal=proposal)


@require_GET
@role_required(*READ_ROLES)
def scope_rollout(request: HttpRequest, scope: str) -> HttpResponse:
    """The rollout panel of a scope: its current revision's hosts."""
    tenant_id = _principal(request).tenant_id
    number = ConfigScope.objects.for_tenant(tenant_id).filter(scope=scope).values_list("current__number", flat=True).first()
    rollout = hosts.revision_rollout(tenant_id, scope, number) if number else None
    return _render_rollout(request, rollout, scope=scope)
