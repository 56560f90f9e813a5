"""Console pages of the modules app: module list, module detail with history and Rollback, key-rotation report."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from aion.ratelimit import client_ip
from aion.rbac import Role, principal_allows, role_required
from modules import services
from modules.models import Module
from modules.reports import key_rotation_report


@require_GET
@role_required(Role.MODULES_ADMIN)
def index(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    modules = Module.objects.filter(tenant_id=principal.tenant_id).select_related("active_version").order_by("name")
    rows = []
    for module in modules:
        versions = list(module.versions.order_by("-created_at", "-id").values_list("version", flat=True)[:10])
        rows.append({"module": module, "versions": versions})
    return render(request, "modules/index.html", {"rows": rows})


@require_GET
@role_required(Role.MODULES_ADMIN)
def detail(request: HttpRequest, name: str) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    module = get_object_or_404(Module.objects.select_related("active_version"), tenant_id=principal.tenant_id, name=name)
    previous = services.previous_version(module)
    return render(
        request,
        "modules/detail.html",
        {
            "module": module,
            "versions": module.versions.order_by("-created_at", "-id"),
            "activations": module.activations.select_related("from_version", "to_version").order_by("-id")[:50],
            "checks": module.health_checks.order_by("-checked_at", "-id")[:20],
            "previous": previous,
            "can_change": principal_allows(principal, Role.MODULES_ADMIN, "POST"),
        },
    )


@require_POST
@role_required(Role.MODULES_ADMIN)
def rollback(request: HttpRequest, name: str) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    module = get_object_or_404(Module.objects.select_related("active_version"), tenant_id=principal.tenant_id, name=name)
    target = "../"  # relative: the module page, wherever the Console mounts this app
    reason = (request.POST.get("reason") or "").strip()
    version = (request.POST.get("version") or "").strip() or None
    if not reason:
        messages.error(request, "A reason is required to roll back.")
        return HttpResponseRedirect(target)
    try:
        activation = services.rollback_module(module, actor=principal, version=version, reason=reason[:500], source_ip=client_ip(request))
    except services.ModuleActionError as exc:
        messages.error(request, f"Rollback refused: {exc.detail}")
        return HttpResponseRedirect(target)
    to = activation.to_version.version if activation.to_version else "?"
    messages.success(request, f"{module.name} rolled back to {to}.")
    return HttpResponseRedirect(target)


@require_GET
@role_required(Role.MODULES_ADMIN)
def keys(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    return render(request, "modules/keys.html", {"report": key_rotation_report(principal.tenant_id)})
