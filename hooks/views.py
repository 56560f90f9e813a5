"""Console pages of the hooks app: endpoints (with the 24 h failure chart), deliveries (+ CSV), sources, incidents.

Thin views over ``hooks.services``; input goes through ``hooks.forms`` and a service's refusal is shown on
the form with what was typed. New secrets are rendered once in the POST response, never stored in the
session or messages. The deliveries list is the API's FilterSet as a django-tables2 table that refreshes
itself (htmx) every few seconds.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from aion.forms import REFUSALS, add_refusal
from aion.models import IncidentKind
from aion.rbac import Role, role_required
from aion.tables import csv_response, filtered_table
from hooks import services, signing
from hooks.choices import DeliveryStatus
from hooks.filtersets import WebhookDeliveryFilterSet
from hooks.forms import EndpointForm, HookSourceForm, RecoverForm
from hooks.models import HookSource, WebhookDelivery, WebhookEndpoint
from hooks.tables import DeliveryTable

CHART_BAR_WIDTH = 20
CHART_HEIGHT = 100
DELIVERIES_LIVE_SECONDS = 5


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
    status = 200
    form = EndpointForm(request.POST if request.method == "POST" else None)
    if form.is_bound:
        if form.is_valid():
            try:
                endpoint, new_secret = services.create_endpoint(tenant_id=tenant, actor=_actor(request), **form.cleaned_data)
            except REFUSALS as exc:
                add_refusal(form, exc)
            else:
                messages.success(request, f"Endpoint {endpoint.pk} created.")
                form = EndpointForm()  # the secret is shown once; the form starts empty again
        if form.errors:
            status = 400  # the form again with what was typed and why it was refused
    endpoints = WebhookEndpoint.objects.for_tenant(tenant).order_by("-created_at")
    return render(
        request,
        "hooks/index.html",
        {
            "endpoints": endpoints,
            "chart": failure_chart(tenant),
            "new_secret": new_secret,
            "form": form,
            "new_secret_whsec": signing.standard_webhooks_secret(new_secret) if new_secret else None,
        },
        status=status,
    )


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


def _deliveries_of(tenant: str) -> Any:
    return WebhookDelivery.objects.for_tenant(tenant).select_related("endpoint").prefetch_related("attempt_log")


def _deliveries_context(request: HttpRequest, query: QueryDict) -> dict[str, Any]:
    tenant = _tenant(request)
    listed = filtered_table(request, WebhookDeliveryFilterSet, _deliveries_of(tenant), DeliveryTable, query)
    return {
        "table": listed.table,
        "form": listed.filterset.form,
        "errors": listed.errors,
        "query": listed.query,
        "live_seconds": DELIVERIES_LIVE_SECONDS,
    }


@require_GET
@role_required(Role.HOOKS_ADMIN)
def deliveries(request: HttpRequest) -> HttpResponse:
    context = _deliveries_context(request, request.GET)
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "hooks/_deliveries_panel.html", context)
    tenant = _tenant(request)
    initial_since = (timezone.now() - timedelta(hours=24)).replace(second=0, microsecond=0)
    recover_form = RecoverForm(tenant_id=tenant, initial={"since": initial_since})
    return render(request, "hooks/deliveries.html", {**context, "recover_form": recover_form, "chart": failure_chart(tenant)})


@require_GET
@role_required(Role.HOOKS_ADMIN)  # type: ignore[arg-type]  # role_required is typed for HttpResponse; this streams
def deliveries_export(request: HttpRequest) -> HttpResponseBase:
    """The filtered deliveries of this tenant as CSV (the API's filters; bad filters are a 400, like the API's)."""
    listed = filtered_table(request, WebhookDeliveryFilterSet, _deliveries_of(_tenant(request)), DeliveryTable, paginate=False)
    if listed.errors:
        problems = "; ".join(f"{field}: {' '.join(found)}" for field, found in listed.errors.items())
        return HttpResponse(f"Invalid filters. {problems}", status=400, content_type="text/plain; charset=utf-8")
    return csv_response(listed.table, "webhook-deliveries.csv")


@require_POST
@role_required(Role.HOOKS_ADMIN)
def redeliver(request: HttpRequest, pk: int) -> HttpResponse:
    delivery = get_object_or_404(WebhookDelivery, pk=pk, tenant_id=_tenant(request))
    services.redeliver(delivery, actor=_actor(request))
    messages.success(request, f"Delivery {delivery.delivery_id} queued for redelivery.")
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "hooks/_deliveries_panel.html", _deliveries_context(request, request.GET))
    return redirect("hooks:deliveries")


@require_POST
@role_required(Role.HOOKS_ADMIN)
def recover(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    form = RecoverForm(request.POST, tenant_id=tenant)
    if form.is_valid():
        since = form.cleaned_data["since"]
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        try:
            ids = services.recover_failed(tenant_id=tenant, since=since, actor=_actor(request), endpoint=form.cleaned_data["endpoint"])
        except REFUSALS as exc:
            add_refusal(form, exc)
        else:
            messages.success(request, f"Recovered {len(ids)} failed deliveries.")
            return redirect("hooks:deliveries")
    # The page again with the recover form as typed and its errors.
    context = _deliveries_context(request, QueryDict())
    return render(request, "hooks/deliveries.html", {**context, "recover_form": form, "chart": failure_chart(tenant)}, status=400)


@role_required(Role.HOOKS_ADMIN)
def sources(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    form = HookSourceForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            source, secret = services.create_hook_source(tenant_id=tenant, actor=_actor(request), **form.cleaned_data)
        except REFUSALS as exc:
            add_refusal(form, exc)
        else:
            return render(request, "hooks/secret_once.html", {"what": f"hook source {source}", "secret": secret, "back": "hooks:sources"})
    rows = HookSource.objects.for_tenant(tenant).prefetch_related("secrets")
    return render(request, "hooks/sources.html", {"sources": rows, "form": form}, status=400 if form.errors else 200)


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
