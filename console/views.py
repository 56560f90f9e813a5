"""The Console shell: login, logout and the dashboard with live readiness."""

from __future__ import annotations

from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from aion.health import readiness
from aion.rbac import AUTHENTICATED, PUBLIC, role_required
from console import dashboard as panels


class ConsoleLoginView(LoginView):
    required_role = PUBLIC
    template_name = "console/login.html"
    redirect_authenticated_user = True


class ConsoleLogoutView(LogoutView):
    required_role = PUBLIC


@role_required(AUTHENTICATED)
def dashboard(request: HttpRequest) -> HttpResponse:
    """What needs me? Proposals awaiting my approval, recent applies and rollbacks (with the rollbacks chart),
    webhook failures of the last 24 h, uploads in progress, module hosts down, open incidents, readiness."""
    from aion.incidents import visible_incidents
    from aion.models import IncidentState

    _, ready = readiness()
    principal = request.principal  # type: ignore[attr-defined]
    incidents = visible_incidents(principal).filter(state=IncidentState.OPEN)
    return render(
        request,
        "console/dashboard.html",
        {
            "ready": ready,
            "incident_count": incidents.count(),
            "incidents": incidents[:10],
            "awaiting": panels.awaiting_my_approval(principal),
            "recent": panels.recent_changes(principal),
            "rollbacks": panels.rollback_chart(principal),
            "webhook_failures": panels.webhook_failures(principal),
            "uploads": panels.uploads_in_progress(principal),
            "hosts_down": panels.module_hosts_down(principal),
        },
    )


@role_required(AUTHENTICATED)
def status_json(request: HttpRequest) -> JsonResponse:
    _, body = readiness()
    return JsonResponse(body, status=200)
