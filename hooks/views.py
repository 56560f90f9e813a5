"""Console pages of the hooks app: endpoints (with the 24 h failure chart), deliveries, sources, incidents.

Thin views over ``hooks.services``; new secrets are rendered once in the POST response, never stored
in the session or messages.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.core.validators import validate_slug
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from aion.errors import DomainError, InvalidInput
from aion.models import IncidentKind
from aion.rbac import Role, role_required
from hooks import services, signing
from hooks.choices import DeliveryStatus, HookScope
from hooks.models import HookSource, WebhookDelivery, WebhookEndpoint

CHART_BAR_WIDTH = 20
CHART_HEIGHT = 100


def _tenant(request: HttpRequest) -> str:
    return str(request.principal.tenant_id)  # type: ignore[attr-defined]


def _actor(request: HttpRequest) -> Any:
    return request.principal  # type: ignore[attr-defined]


def failure_chart(tenant_id: str) -> dict[str, Any]:
    """Bars for an inline SVG: failed attempts per hour over the last 24 h."""
    buckets = services.failures_per_hour(tenant_id)
    peak = max([b["count"] for b in buckets] + [1])
    bars = []
    for index, bucket in enumerate(buckets):
        height = round(bucket["count"] / peak * (CHART_HEIGHT - 20))
        bars.append(
            {
                "x": index * CHART_BAR_WIDTH + 2,
                "y": CHART_HEIGHT - 14 - height,
                "height": height,
                "count": bucket["count"],
                "label": bucket["hour"].strftime("%H:00"),
                "show_label": index % 4 == 0,
                "label_x": index * CHART_BAR_WIDTH + 2,
            }
        )
    return {
        "bars": bars,
        "width": len(bars) * CHART_BAR_WIDTH + 4,
        "height": CHART_HEIGHT,
        "total": sum(b["count"] for b in buckets),
        "peak": peak,
    }


@role_required(Role.HOOKS_ADMIN)
def index(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    new_secret = None
    if request.method == "POST":
        event_types = [t.strip() for t in request.POST.get("event_types", "").split(",") if t.strip()]
        try:
            endpoint, new_secret = services.create_endpoint(
                tenant_id=tenant, url=request.POST.get("url", "").strip(), event_types=event_types,
                description=request.POST.get("description", "").strip()[:500], actor=_actor(request),
            )  # fmt: skip
            messages.success(request, f"Endpoint {endpoint.pk} created.")
        except DomainError as exc:
            messages.error(request, _error_text(exc))
    endpoints = WebhookEndpoint.objects.filter(tenant_id=tenant).order_by("-created_at")
    return render(
        request,
        "hooks/index.html",
        {
            "endpoints": endpoints,
            "chart": failure_chart(tenant),
            "new_secret": new_secret,
            "scopes": HookScope.choices,
            "new_secret_whsec": signing.standard_webhooks_secret(new_secret) if new_secret else None,
        },
    )


def _error_text(error: DomainError) -> str:
    details = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in (error.errors or {}).items())
    return f"{error.detail} {details}".strip()


@require_POST
@role_required(Role.HOOKS_ADMIN)
def endpoint_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, pk=pk, tenant_id=_tenant(request))
    actor = _actor(request)
    if action == "enable" or action == "disable":
        services.update_endpoint(endpoint, {"enabled": action == "enable"}, actor=actor)
        messages.success(request, f"Endpoint {endpoint.pk} {action}d.")
    elif action == "ping":
        delivery = services.send_test_ping(endpoint, actor=actor)
        attempt = delivery.attempt_log.last()
        result = f"HTTP {attempt.status_code}" if attempt and attempt.status_code else (delivery.last_error or delivery.status)
        (messages.success if delivery.status == DeliveryStatus.SUCCEEDED else messages.error)(request, f"Ping: {result}")
    elif action == "rotate":
        secret = services.rotate_endpoint_secret(endpoint, actor=actor)
        endpoint.refresh_from_db()
        return render(request, "hooks/secret_once.html", {"what": f"endpoint {endpoint.pk} ({endpoint.url})", "secret": secret,
                                                          "secret_whsec": signing.standard_webhooks_secret(secret),
                                                          "back": "hooks:index"})  # fmt: skip
    elif action == "delete":
        services.delete_endpoint(endpoint, actor=actor)
        messages.success(request, f"Endpoint {pk} deleted.")
    else:
        return HttpResponse(status=404)
    return redirect("hooks:index")


@role_required(Role.HOOKS_ADMIN)
def deliveries(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    rows = WebhookDelivery.objects.filter(tenant_id=tenant).select_related("endpoint").prefetch_related("attempt_log")
    status = request.GET.get("status", "")
    if status in DeliveryStatus.values:
        rows = rows.filter(status=status)
    endpoint = request.GET.get("endpoint", "")
    if endpoint.isdigit():
        rows = rows.filter(endpoint_id=int(endpoint))
    page = Paginator(rows.order_by("-created_at", "-id"), 50).get_page(request.GET.get("page"))
    default_since = (timezone.now() - timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M")
    return render(
        request,
        "hooks/deliveries.html",
        {
            "page": page,
            "statuses": DeliveryStatus.values,
            "status": status,
            "endpoint": endpoint,
            "endpoints": WebhookEndpoint.objects.filter(tenant_id=tenant),
            "default_since": default_since,
            "chart": failure_chart(tenant),
        },
    )


@require_POST
@role_required(Role.HOOKS_ADMIN)
def redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=pk, tenant_id=_tenant(request))
    services.redeliver(delivery, actor=_actor(request))
    messages.success(request, f"Delivery {delivery.delivery_id} queued for redelivery.")
    return redirect("hooks:deliveries")


@require_POST
@role_required(Role.HOOKS_ADMIN)
def recover(request: HttpRequest) -> HttpResponse:
    raw = request.POST.get("since", "")
    since = parse_datetime(raw)
    if since is None:
        messages.error(request, "Give the time to recover from, e.g. 2026-01-01T00:00.")
        return redirect("hooks:deliveries")
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    ids = services.recover_failed(tenant_id=_tenant(request), since=since, actor=_actor(request))
    messages.success(request, f"Recovered {len(ids)} failed deliveries.")
    return redirect("hooks:deliveries")


@role_required(Role.HOOKS_ADMIN)
def sources(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    if request.method == "POST":
        scopes = [s for s in request.POST.getlist("scopes") if s in HookScope.values]
        name = request.POST.get("name", "").strip()
        try:
            validate_slug(name)
            if not scopes:
                raise InvalidInput("Choose at least one scope.")
            source, secret = services.create_hook_source(
                tenant_id=tenant, name=name, scopes=scopes, actor=_actor(request),
                service_identity=request.POST.get("service_identity", "").strip()[:200],
            )  # fmt: skip
        except ValidationError:
            messages.error(request, "The name must be a slug (letters, digits, - and _).")
        except DomainError as exc:
            messages.error(request, _error_text(exc))
        else:
            return render(request, "hooks/secret_once.html", {"what": f"hook source {source}", "secret": secret, "back": "hooks:sources"})
    rows = HookSource.objects.filter(tenant_id=tenant).prefetch_related("secrets")
    return render(request, "hooks/sources.html", {"sources": rows, "scopes": HookScope.choices})


@require_POST
@role_required(Role.HOOKS_ADMIN)
def source_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    source = get_object_or_404(HookSource, pk=pk, tenant_id=_tenant(request))
    if action == "rotate":
        secret = services.rotate_hook_source_secret(source, actor=_actor(request))
        return render(request, "hooks/secret_once.html", {"what": f"hook source {source}", "secret": secret, "back": "hooks:sources"})
    if action in ("enable", "disable"):
        services.set_hook_source_enabled(source, action == "enable", actor=_actor(request))
        messages.success(request, f"Hook source {source.name} {action}d.")
        return redirect("hooks:sources")
    return HttpResponse(status=404)


@role_required(Role.AUDITOR, Role.SECURITY_ADMIN, Role.HOOKS_ADMIN)
def incidents(request: HttpRequest) -> HttpResponse:
    """The Webhooks tab's incidents: the Console's security incidents page, filtered to hook signatures."""
    return redirect(f"{reverse('console:incidents')}?kind={IncidentKind.HOOK_SIGNATURE}")
