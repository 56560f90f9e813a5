"""The /readyz entry of the hooks app: the webhook backlog and whether the sweep keeps up."""

from __future__ import annotations

from typing import Any

from django.utils import timezone


def check_webhooks() -> dict[str, Any]:
    from hooks.choices import DeliveryStatus
    from hooks.models import WebhookDelivery

    due = WebhookDelivery.objects.filter(status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=timezone.now())
    oldest = due.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    # A backlog older than 10 minutes means no worker is sending: degraded (events are kept, not lost).
    status = "degraded" if lag > 600 else "ok"
    return {"status": status, "engine": "celery", "due_deliveries": due.count(), "oldest_due_age_seconds": round(lag, 1)}
