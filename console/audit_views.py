"""Console audit pages: the tenant's log with filters (actor, action, resource, time) and one record's diff."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from aion.api.filtersets import AuditRecordFilterSet
from aion.models import AuditRecord
from aion.rbac import Role, role_required
from console.listing import filtered_page


@role_required(Role.AUDITOR)
def audit_list(request: HttpRequest) -> HttpResponse:
    principal: Any = request.principal  # type: ignore[attr-defined]
    records = AuditRecord.objects.filter(tenant_id=principal.tenant_id).order_by("-created_at", "-id")
    listed = filtered_page(request, AuditRecordFilterSet, records)
    return render(
        request,
        "console/audit.html",
        {"page": listed.page, "filters": request.GET, "errors": listed.errors, "query": listed.query, "tenant_id": principal.tenant_id},
    )


def diff_rows(before: Any, after: Any) -> list[dict[str, Any]]:
    """Field-by-field comparison of two JSON documents (top-level keys; nested values shown as JSON)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return [{"field": "(value)", "before": _show(before), "after": _show(after), "status": "same" if before == after else "changed"}]
    rows = []
    for field in sorted(set(before) | set(after)):
        if field not in before:
            status = "added"
        elif field not in after:
            status = "removed"
        else:
            status = "same" if before[field] == after[field] else "changed"
        rows.append({"field": field, "before": _show(before.get(field)), "after": _show(after.get(field)), "status": status})
    return rows


def _show(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True, default=str)


@role_required(Role.AUDITOR)
def audit_detail(request: HttpRequest, pk: int) -> HttpResponse:
    principal: Any = request.principal  # type: ignore[attr-defined]
    record = AuditRecord.objects.filter(tenant_id=principal.tenant_id, pk=pk).first()
    if record is None:
        raise Http404("No such audit record.")
    return render(
        request,
        "console/audit_detail.html",
        {"record": record, "rows": diff_rows(record.before, record.after), "metadata": _show(record.metadata)},
    )
