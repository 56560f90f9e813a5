"""Console tables of the hooks app: webhook deliveries (the list and its CSV export)."""

from __future__ import annotations

from typing import Any

import django_tables2 as tables
from django.utils.html import format_html

from aion.tables import ConsoleTable
from hooks.models import WebhookDelivery

WHEN = "Y-m-d H:i:s"


class DeliveryTable(ConsoleTable):
    created_at = tables.DateTimeColumn(format=WHEN, verbose_name="Created")
    event_type = tables.TemplateColumn(template_code='{{ value }}<div class="muted"><code>{{ record.delivery_id }}</code></div>',
                                       verbose_name="Event")  # fmt: skip
    delivery_id = tables.Column(visible=False)  # in the export, not as a column of its own on the page
    endpoint = tables.Column(accessor="endpoint__url", verbose_name="Endpoint", order_by=("endpoint__url",))
    status = tables.Column()
    attempts = tables.TemplateColumn(template_name="hooks/_attempts.html")
    next_attempt_at = tables.DateTimeColumn(format=WHEN, verbose_name="Next attempt", default="—")
    last_status_code = tables.Column(verbose_name="Last HTTP status", default="", visible=False)
    last_error = tables.Column(verbose_name="Last error", default="")
    redeliver = tables.TemplateColumn(template_name="hooks/_redeliver.html", verbose_name="", orderable=False, exclude_from_export=True)

    class Meta(ConsoleTable.Meta):
        model = WebhookDelivery
        fields = ("created_at", "event_type", "delivery_id", "endpoint", "status", "attempts", "next_attempt_at", "last_status_code",
                  "last_error")  # fmt: skip
        sequence = ("created_at", "event_type", "delivery_id", "endpoint", "status", "attempts", "next_attempt_at",
                    "last_status_code", "last_error", "redeliver")  # fmt: skip
        attrs = {"class": "listing", "id": "deliveries"}
        row_attrs = {"data-delivery": lambda record: record.delivery_id}
        order_by = ("-created_at",)
        empty_text = "No deliveries."

    def render_endpoint(self, value: str) -> str:
        return value if len(value) <= 40 else value[:39] + "…"

    def value_endpoint(self, value: str) -> str:
        return value

    def render_status(self, record: Any) -> Any:
        return format_html('<span class="badge {}">{}</span>', record.status, record.status)

    def value_status(self, record: Any) -> str:
        return str(record.status)

    def render_last_error(self, value: str) -> Any:
        return format_html('<span class="error">{}</span>', value[:80])

    def value_last_error(self, record: WebhookDelivery) -> str:
        return record.last_error

    def value_event_type(self, record: WebhookDelivery) -> str:
        return record.event_type

    def value_attempts(self, record: WebhookDelivery) -> int:
        return record.attempts
