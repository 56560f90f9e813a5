"""Console tables (django-tables2) of the shell's lists: audit records, security incidents and job runs."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.utils.html import format_html

from aion.models import AuditRecord, SecurityIncident
from aion.ops.models import JobRun
from aion.tables import ConsoleTable

WHEN = "Y-m-d H:i:s"


class AuditTable(ConsoleTable):
    created_at = tables.DateTimeColumn(format=WHEN, verbose_name="When")
    actor = tables.Column()
    action = tables.Column()
    resource = tables.Column(accessor="resource_type", verbose_name="Resource", order_by=("resource_type", "resource_id"))
    result = tables.Column()
    request_id = tables.Column(verbose_name="Request")
    diff = tables.LinkColumn("console:audit-detail", args=[tables.A("pk")], text="diff", orderable=False, verbose_name="",
                             exclude_from_export=True)  # fmt: skip

    class Meta(ConsoleTable.Meta):
        model = AuditRecord
        fields = ("created_at", "actor", "action", "resource", "result", "request_id")
        sequence = ("created_at", "actor", "action", "resource", "result", "request_id", "diff")
        attrs = {"class": "listing", "id": "audit-records"}
        row_attrs = {"data-record": lambda record: record.pk}
        order_by = ("-created_at",)
        empty_text = "No audit records match."

    def render_resource(self, record: AuditRecord) -> str:
        return f"{record.resource_type}:{record.resource_id}" if record.resource_id else record.resource_type

    def value_resource(self, record: AuditRecord) -> str:
        return self.render_resource(record)

    def render_result(self, record: AuditRecord) -> Any:
        return format_html('<span class="badge {}">{}</span>', "ok" if record.result == "success" else "danger", record.result)

    def value_result(self, record: AuditRecord) -> str:
        return str(record.result)


class IncidentTable(ConsoleTable):
    created_at = tables.DateTimeColumn(format=WHEN, verbose_name="When")
    kind = tables.Column()
    reason = tables.Column()
    tenant_id = tables.Column(verbose_name="Tenant")
    source_ip = tables.Column(verbose_name="Source IP", default="")
    request_id = tables.Column(verbose_name="Request id")
    state = tables.TemplateColumn(template_name="console/_incident_state.html", orderable=True)

    class Meta(ConsoleTable.Meta):
        model = SecurityIncident
        fields = ("created_at", "kind", "reason", "tenant_id", "source_ip", "request_id", "state")
        attrs = {"class": "listing", "id": "incidents"}
        row_attrs = {
            "data-incident": lambda record: record.pk,
            "data-kind": lambda record: record.kind,
            "id": lambda record: f"incident-{record.pk}",
        }
        order_by = ("-created_at",)
        empty_text = "No incidents match."

    def render_reason(self, value: str) -> Any:
        return format_html('<span class="badge danger">{}</span>', value)

    def render_tenant_id(self, value: str, record: SecurityIncident) -> Any:
        claimed = (record.details or {}).get("claimed_tenant")
        return format_html('{} <span class="muted">(claimed {})</span>', value, claimed) if claimed else value

    def render_request_id(self, value: str) -> Any:
        return format_html("<code>{}</code>", value)


class JobRunTable(ConsoleTable):
    started_at = tables.DateTimeColumn(format=WHEN, verbose_name="Started", linkify=("console:jobs-run", [tables.A("pk")]))
    job_name = tables.Column(verbose_name="Job")
    trigger = tables.Column()
    status = tables.Column()
    duration_ms = tables.Column(verbose_name="Duration (ms)", default="")
    hostname = tables.Column(verbose_name="Host")

    class Meta(ConsoleTable.Meta):
        model = JobRun
        fields = ("started_at", "job_name", "trigger", "status", "duration_ms", "hostname")
        attrs = {"class": "listing", "id": "runs"}
        row_attrs = {"data-run": lambda record: record.pk, "data-job": lambda record: record.job_name}
        order_by = ("-started_at",)
        empty_text = "No runs yet."

    def render_job_name(self, value: str) -> Any:
        return format_html("<code>{}</code>", value)

    def render_status(self, record: Any) -> Any:
        return format_html('<span class="badge {}">{}</span>', record.status, record.status)

    def value_status(self, record: Any) -> str:
        return str(record.status)
