"""Console security incidents: every kind, filtered by the API's FilterSet, acknowledged with a note (htmx or a POST)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from aion import incidents
from aion.errors import DomainError
from aion.models import IncidentState
from aion.rbac import Role, role_required
from aion.tables import filtered_table
from console.forms import AcknowledgeForm, IncidentFilterSet
from console.tables import IncidentTable

# Reads: auditors, and whoever may acknowledge (the API's IncidentPermission does the same).
READ_ROLES = (Role.AUDITOR, Role.SECURITY_ADMIN, Role.HOOKS_ADMIN)
ACKNOWLEDGE_ROLES = (Role.SECURITY_ADMIN, Role.HOOKS_ADMIN)
LIVE_SECONDS = 10  # the list refreshes itself (htmx) this often


def _list_context(request: HttpRequest, query: QueryDict) -> dict[str, Any]:
    principal: Any = request.principal  # type: ignore[attr-defined]
    # Unacknowledged ones first: with no state in the query the page shows the open incidents; "all" (or empty) is every state.
    params = query.copy()
    params.setdefault("state", IncidentState.OPEN)
    if params.get("state") == "all":
        params["state"] = ""
    listed = filtered_table(request, IncidentFilterSet, incidents.visible_incidents(principal), IncidentTable, params)
    filters = query.copy()
    for control in ("page", "sort"):
        filters.pop(control, None)
    return {
        "table": listed.table,
        "form": listed.filterset.form,
        "errors": listed.errors,
        "query": filters.urlencode(),
        "tenants": incidents.visible_tenants(principal),
        "can_acknowledge": bool(set(principal.roles) & {str(r) for r in ACKNOWLEDGE_ROLES}),
        "max_note": incidents.MAX_NOTE,
        "live_seconds": LIVE_SECONDS,
    }


@require_GET
@role_required(*READ_ROLES)
def incident_list(request: HttpRequest) -> HttpResponse:
    context = _list_context(request, request.GET)
    template = "console/_incidents_panel.html" if request.htmx else "console/incidents.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@require_POST
@role_required(*ACKNOWLEDGE_ROLES)
def incident_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    principal: Any = request.principal  # type: ignore[attr-defined]
    incident = incidents.visible_incidents(principal).filter(pk=pk).first()
    if incident is None:
        raise Http404("No such incident.")
    form = AcknowledgeForm(request.POST)
    valid = form.is_valid()
    # Back to the list with its filters (re-encoded: only a query string of this page, never another URL).
    back = QueryDict(form.cleaned_data.get("filters", ""))
    if valid:
        try:
            _, changed = incidents.acknowledge_incident(incident, actor=principal, note=form.cleaned_data["note"])
        except (incidents.InvalidNote, DomainError) as exc:
            messages.error(request, f"Incident {pk}: {exc}")
        else:
            messages.success(request, f"Incident {pk} acknowledged." if changed else f"Incident {pk} was already acknowledged.")
    else:
        messages.error(request, f"Incident {pk}: {' '.join(str(e) for e in form.errors.get('note', ['invalid input']))}")
    if request.htmx:  # type: ignore[attr-defined]
        # The list again (same filters) with the message in the panel: the row shows its new state without a reload.
        return render(request, "console/_incidents_panel.html", _list_context(request, back))
    return redirect(reverse("console:incidents") + (f"?{back.urlencode()}" if back else ""))
