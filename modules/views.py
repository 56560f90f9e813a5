"""Console pages of the modules app: module list, module detail with history and Rollback, key-rotation report."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from aion.errors import DomainError
from aion.forms import refusal_text
from aion.problems import Problem  # until modules.services raises aion.errors (issue 19 §3)
from aion.ratelimit import client_ip
from aion.rbac import Role, principal_allows, role_required
from modules import services
from modules.forms import RollbackForm
from modules.models import Module
from modules.reports import key_rotation_report


@require_GET
@role_required(Role.MODULES_ADMIN)
def index(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    modules = Module.objects.for_tenant(principal.tenant_id).select_related("active_version").order_by("name")
    rows = []
    for module in modules:
        versions = list(module.versions.order_by("-created_at", "-id").values_list("version", flat=True)[:10])
        rows.append({"module": module, "versions": versions})
    return render(request, "modules/index.html", {"rows": rows})


def _module(request: HttpRequest, name: str) -> Module:
    principal = request.principal  # type: ignore[attr-defined]
    return get_object_or_404(Module.objects.select_related("active_version"), tenant_id=principal.tenant_id, name=name)


def _detail(request: HttpRequest, module: Module, form: RollbackForm | None = None, status: int = 200) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
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
            "form": form or RollbackForm(module=module),
        },
        status=status,
    )


@require_GET
@role_required(Role.MODULES_ADMIN)
def detail(request: HttpRequest, name: str) -> HttpResponse:
    return _detail(request, _module(request, name))


@require_POST
@role_required(Role.MODULES_ADMIN)
def rollback(request: HttpRequest, name: str) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    module = _module(request, name)
    form = RollbackForm(request.POST, module=module)
    if form.is_valid():
        try:
            activation = services.rollback_module(
                module,
                actor=principal,
                version=form.cleaned_data["version"] or None,
                reason=form.cleaned_data["reason"],
                source_ip=client_ip(request),
            )
        except (services.ModuleActionError, DomainError, Problem) as exc:
            form.add_error(None, f"Rollback refused: {refusal_text(exc)}")
        else:
            to = activation.to_version.version if activation.to_version else "?"
            messages.success(request, f"{module.name} rolled back to {to}.")
            return HttpResponseRedirect("../")  # relative: the module page, wherever the Console mounts this app
    module.refresh_from_db()
    return _detail(request, module, form, status=400)  # the dialog open again, with the reason as typed and why


@require_GET
@role_required(Role.MODULES_ADMIN)
def keys(request: HttpRequest) -> HttpResponse:
    principal = request.principal  # type: ignore[attr-defined]
    return render(request, "modules/keys.html", {"report": key_rotation_report(principal.tenant_id)})
