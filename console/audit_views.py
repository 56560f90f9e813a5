"""Console audit pages: the tenant's log with filters (actor, action, resource, time), its CSV export, one record's diff.

The list and the export share the API's ``AuditRecordFilterSet`` and the tenant scoping (``records_of``).
"""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from aion.api.filtersets import AuditRecordFilterSet
from aion.models import AuditRecord
from aion.rbac import Role, role_required
from aion.tables import csv_response, filtered_table
from console.tables import AuditTable


def records_of(request: HttpRequest) -> Any:
    principal: Any = request.principal  # type: ignore[attr-defined]
    return AuditRecord.objects.for_tenant(principal.tenant_id).order_by("-created_at", "-id")


@require_GET
@role_required(Role.AUDITOR)
def audit_list(request: HttpRequest) -> HttpResponse:
    listed = filtered_table(request, AuditRecordFilterSet, records_of(request), AuditTable)
    return render(
        request,
        "console/audit.html",
        {
            "table": listed.table,
            "form": listed.filterset.form,
            "errors": listed.errors,
            "query": listed.query,
            "tenant_id": request.principal.tenant_id,  # type: ignore[attr-defined]
        },
    )


@require_GET
@role_required(Role.AUDITOR)  # type: ignore[arg-type]  # role_required is typed for HttpResponse; this streams
def audit_export(request: HttpRequest) -> HttpResponseBase:
    """The filtered log as CSV (every matching row of this tenant, in the list's sort order); bad filters are a 400."""
    listed = filtered_table(request, AuditRecordFilterSet, records_of(request), AuditTable, paginate=False)
    if listed.errors:
        return render(request, "console/audit.html", {"table": listed.table, "form": listed.filterset.form, "errors": listed.errors,
                                                      "query": listed.query, "tenant_id": request.principal.tenant_id},  # type: ignore[attr-defined]
                      status=400)  # fmt: skip
    return csv_response(listed.table, "audit.csv")


def diff_rows(before: Any, after: Any) -> list[dict[str, Any]]:
    """Field-by-field comparison of two JSON documents (top-level keys; nested values shown as JSON)."""
    if before is None and isinstance(after, dict):
        before = {}  # a creation: every field is added
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
    record = AuditRecord.objects.for_tenant(principal.tenant_id).filter(pk=pk).first()
    if record is None:
        raise Http404("No such audit record.")
    return render(
        request,
        "console/audit_detail.html",
        {
            "record": record,
            "rows": diff_rows(record.before, record.after),
            "created": record.before in (None, {}),  # nothing before: the action created the resource
            "metadata": _show(record.metadata),
        },
    )
