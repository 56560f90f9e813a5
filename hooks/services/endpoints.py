"""Outbound endpoints: create (SSRF-checked URL, event type patterns), update, delete, rotate the signing secret, ping."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aion import audit
from aion.errors import InvalidInput
from aion.netguard import UnsafeDestination, check_url
from hooks.crypto import encrypt, fingerprint, new_endpoint_secret
from hooks.models import WebhookDelivery, WebhookEndpoint
from hooks.services.delivery import deliver

PING_EVENT_TYPE = "webhook.ping"
EVENT_TYPE_PATTERN = re.compile(r"^[a-z0-9_*-]+(\.[a-z0-9_*-]+)*$")


def validate_endpoint_url(url: str) -> None:
    try:
        check_url(url, allow_private=bool(settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS))
    except UnsafeDestination as exc:
        raise InvalidInput(
            "The URL is not an allowed webhook destination.", code="unsafe-destination", errors={"url": [str(exc)]}
        ) from None


def validate_event_types(event_types: list[str]) -> list[str]:
    cleaned = sorted({str(t).strip() for t in event_types if str(t).strip()})
    bad = [t for t in cleaned if not EVENT_TYPE_PATTERN.match(t) or len(t) > 200]
    if bad or not cleaned:
        message = f"invalid: {', '.join(bad)}" if bad else "at least one event type"
        raise InvalidInput("Event types must be dotted names, optionally with * wildcards.", errors={"event_types": [message]})
    return cleaned


def endpoint_snapshot(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "event_types": list(endpoint.event_types),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "secret_fingerprint": endpoint.secret_fingerprint,
    }


def create_endpoint(
    *, tenant_id: str, url: str, event_types: list[str], actor: Any, description: str = "", enabled: bool = True
) -> tuple[WebhookEndpoint, str]:
    validate_endpoint_url(url)
    types = validate_event_types(event_types)
    secret = new_endpoint_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            tenant_id=tenant_id, url=url, description=description, event_types=types, enabled=enabled,
            secret_encrypted=encrypt(secret), secret_fingerprint=fingerprint(secret),
        )  # fmt: skip
        audit.record("hooks.endpoint.created", "webhook_endpoint", endpoint.pk, actor=actor, tenant_id=tenant_id,
                     after=endpoint_snapshot(endpoint))  # fmt: skip
    return endpoint, secret


def update_endpoint(endpoint: WebhookEndpoint, changes: dict[str, Any], *, actor: Any) -> WebhookEndpoint:
    if "url" in changes:
        validate_endpoint_url(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = validate_event_types(changes["event_types"])
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = endpoint_snapshot(locked)
        for field in ("url", "description", "event_types", "enabled"):
            if field in changes:
                setattr(locked, field, changes[field])
        if changes.get("enabled") is True:
            locked.disabled_reason = ""
        elif changes.get("enabled") is False and not locked.disabled_reason:
            locked.disabled_reason = f"disabled by {getattr(actor, 'subject', actor)}"
        locked.save()
        audit.record("hooks.endpoint.updated", "webhook_endpoint", locked.pk, actor=actor, tenant_id=locked.tenant_id,
                     before=before, after=endpoint_snapshot(locked))  # fmt: skip
    return locked


def delete_endpoint(endpoint: WebhookEndpoint, *, actor: Any) -> None:
    with transaction.atomic():
        before = endpoint_snapshot(endpoint)
        pk, tenant = endpoint.pk, endpoint.tenant_id
        endpoint.delete()
        audit.record("hooks.endpoint.deleted", "webhook_endpoint", pk, actor=actor, tenant_id=tenant, before=before)


def rotate_endpoint_secret(endpoint: WebhookEndpoint, *, actor: Any, grace_hours: float | None = None, now: datetime | None = None) -> str:
    """A new whsec_ secret; during the grace period both signatures are sent (two v1= entries in each header)."""
    now = now or timezone.now()
    hours = settings.AION_WEBHOOK_SECRET_GRACE_HOURS if grace_hours is None else grace_hours
    secret = new_endpoint_secret()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret_encrypted = locked.secret_encrypted
        locked.previous_secret_expires_at = now + timedelta(hours=hours)
        locked.secret_encrypted = encrypt(secret)
        locked.secret_fingerprint = fingerprint(secret)
        locked.save()
        audit.record("hooks.endpoint.secret_rotated", "webhook_endpoint", locked.pk, actor=actor,
                     tenant_id=locked.tenant_id,
                     after={"secret_fingerprint": locked.secret_fingerprint,
                            "previous_valid_until": locked.previous_secret_expires_at.isoformat()})  # fmt: skip
    return secret


def send_test_ping(endpoint: WebhookEndpoint, *, actor: Any, now: datetime | None = None,
                   client: httpx.Client | None = None) -> WebhookDelivery:  # fmt: skip
    """A ``webhook.ping`` delivery sent right now, once (no retries, no failure metric)."""
    now = now or timezone.now()
    event_id = uuid.uuid4()
    envelope = {
        "event_id": str(event_id), "type": PING_EVENT_TYPE, "occurred_at": now.isoformat(),
        "tenant_id": endpoint.tenant_id, "actor": getattr(actor, "subject", str(actor)), "request_id": "",
        "data": {"endpoint_id": endpoint.pk, "message": "ping from AION Control"},
    }  # fmt: skip
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            tenant_id=endpoint.tenant_id, endpoint=endpoint, event_id=event_id, event_type=PING_EVENT_TYPE,
            payload=envelope, next_attempt_at=now,
        )  # fmt: skip
        audit.record("hooks.endpoint.pinged", "webhook_endpoint", endpoint.pk, actor=actor, tenant_id=endpoint.tenant_id,
                     metadata={"delivery_id": str(delivery.delivery_id)})  # fmt: skip
    return deliver(delivery.pk, now=now, client=client, one_shot=True) or delivery
