"""Models of the hooks app: inbound hook sources and their secrets, outbound endpoints and deliveries.

Secrets are stored Fernet-encrypted (``hooks.crypto``); plaintext is shown once,
when created or rotated.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from aion.tenancy import TenantOwned
from hooks.choices import DeliveryStatus


class HookSource(TenantOwned):
    """A tenant's sender of signed inbound hooks (e.g. a ChatOps bot) and what it may do."""

    name = models.SlugField(max_length=100)
    scopes = models.JSONField(default=list, help_text="e.g. ['kernel.approve', 'kernel.reject']")
    service_identity = models.CharField(max_length=200, blank=True, help_text="The service account the hook acts as")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "name"], name="hooks_source_unique_name_per_tenant")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.name}"


class HookSourceSecret(models.Model):
    """One secret of a source: the active one has no ``expires_at``; rotated ones expire after the grace."""

    source = models.ForeignKey(HookSource, on_delete=models.CASCADE, related_name="secrets")
    secret_encrypted = models.TextField()
    fingerprint = models.CharField(max_length=16)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.source} secret {self.fingerprint}"


class WebhookEndpoint(TenantOwned):
    """A tenant's receiver of outbound events."""

    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    event_types = models.JSONField(default=list, help_text="Subscribed types; wildcards like 'kernel.proposal.*' or '*'")
    secret_encrypted = models.TextField()
    secret_fingerprint = models.CharField(max_length=16, blank=True)
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant_id", "enabled"], name="hooks_endpoint_tenant_enabled")]

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.url}"


class WebhookDelivery(TenantOwned):
    """One event to one endpoint; ``delivery_id`` is sent as ``x-omerta-delivery`` so receivers can dedupe."""

    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(db_index=True)
    event_type = models.CharField(max_length=200, db_index=True)
    payload = models.JSONField()
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts in the current round (reset by redeliver)")
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # A lease: the sender holding it owns the delivery until then (a crashed worker's lease lapses).
    locked_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["endpoint", "event_id"], name="hooks_delivery_once_per_endpoint_event")]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="hooks_delivery_due")]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} -> {self.endpoint_id} ({self.status})"


class DeliveryAttempt(models.Model):
    """One HTTP attempt of a delivery."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(default=0)
    succeeded = models.BooleanField(default=False)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.TextField(blank=True, help_text="The first 1 KiB of the response body")
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"


class InboundDelivery(TenantOwned):
    """A received inbound hook by delivery id: the idempotency record and the first response."""

    delivery_id = models.CharField(max_length=200)
    source_name = models.CharField(max_length=100, blank=True)
    completed = models.BooleanField(default=False)
    response_status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "delivery_id"], name="hooks_inbound_once_per_delivery")]
        verbose_name_plural = "inbound deliveries"

    def __str__(self) -> str:
        return f"{self.tenant_id}:{self.delivery_id}"
