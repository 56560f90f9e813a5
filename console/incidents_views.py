"""Console security incidents: every kind, filtered by the API's FilterSet, acknowledged with a note."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from aion import incidents
from aion.api.filtersets import SecurityIncidentFilterSet
from aion.models import IncidentKind, IncidentState
from aion.rbac import Role, role_required
from console.listing import filtered_page

# Reads: auditors, and whoever may acknowledge (the API's IncidentPermission does the same).
READ_ROLES = (Role.AUDITOR, Role.SECURITY_ADMIN, Role.HOOKS_ADMIN)
ACKNOWLEDGE_ROLES = (Role.SECURITY_ADMIN, Role.HOOKS_ADMIN)


@role_required(*READ_ROLES)
def incident_list(request: HttpRequest) -> HttpResponse:
    principal: Any = request.principal  # type: ignore[attr-defined]
    rows = incidents.visible_incidents(principal)
    # Unacknowledged ones first: with no state in the query the page shows the open incidents.
    params = request.GET.copy()
    params.setdefault("state", IncidentState.OPEN)
    if params.get("state") == "all":
        params.pop("state")
    listed = filtered_page(request, SecurityIncidentFilterSet, rows, params)
    return render(
        request,
        "console/incidents.html",
        {
            "page": listed.page,
            "filters": request.GET,
            "state": request.GET.get("state", IncidentState.OPEN),
            "errors": listed.errors,
            "query": listed.query,
            "kinds": IncidentKind.choices,
            "tenants": incidents.visible_tenants(principal),
            "can_acknowledge": bool(set(principal.roles) & {str(r) for r in ACKNOWLEDGE_ROLES}),
            "max_note": incidents.MAX_NOTE,
        },
    )


@require_POST
@role_required(*ACKNOWLEDGE_ROLES)
def incident_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    principal: Any = request.principal  # type: ignore[attr-defined]
    incident = incidents.visible_incidents(principal).filter(pk=pk).first()
    if incident is None:
        raise Http404("No such incident.")
    try:
        _, changed = incidents.acknowledge_incident(incident, actor=principal, note=request.POST.get("note", ""))
    except incidents.InvalidNote as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Incident {pk} acknowledged." if changed else f"Incident {pk} was already acknowledged.")
    # Back to the list with its filters (re-encoded: only a query string of this page, never another URL).
    back = QueryDict(str(request.POST.get("filters", ""))).urlencode()
    return redirect(reverse("console:incidents") + (f"?{back}" if back else ""))
