"""Platform models shared by every app: credentials, tenancy, audit, outbox and incidents."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone

from aion.tenancy import TenantOwned


class UserTenant(TenantOwned):
    """Which tenants a Console user may act for (the first one is the default)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tenants")

    class Meta:
        unique_together = [("user", "tenant_id")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant_id}"


class ApiKey(TenantOwned):
    """An API key: only the sha256 of its high-entropy secret is stored."""

    prefix = models.CharField(max_length=32, unique=True, help_text="Visible, non-secret start of the key")
    name = models.CharField(max_length=200)
    roles = models.JSONField(default=list)
    key_hash = models.CharField(max_length=64, unique=True)
    source = models.CharField(max_length=16, default="db", help_text="db (management command) or env (AION_GATEWAY_API_KEYS)")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    replaced_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="replaces",
        help_text="The key a rotation issued in its place",
    )
    created_by = models.CharField(max_length=200, blank=True, help_text="Who issued it (operator or actor)")
    # A kernel.agent key's binding (issue 17): it reports only for this host, or only for hosts of this pool.
    host = models.CharField(max_length=253, blank=True, help_text="kernel.agent keys: the one host it may report for")
    pool = models.CharField(max_length=63, blank=True, help_text="kernel.agent keys: the pool whose hosts it may report for")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or self.expires_at > now


class AuditResult(models.TextChoices):
    SUCCESS = "success"
    DENIED = "denied"
    FAILED = "failed"


class AuditRecord(TenantOwned):
    """One state change (or refused attempt): who, what, before and after, and the request id."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=200, db_index=True)
    actor_kind = models.CharField(max_length=16, blank=True)
    action = models.CharField(max_length=100, db_index=True)
    resource_type = models.CharField(max_length=100, db_index=True)
    resource_id = models.CharField(max_length=200, db_index=True, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True, db_index=True)
    result = models.CharField(max_length=16, choices=AuditResult.choices, default=AuditResult.SUCCESS)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.resource_type}:{self.resource_id}"


class OutboxEvent(TenantOwned):
    """An event written in the caller's transaction; the relay publishes it to Kafka once."""

    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    topic = models.CharField(max_length=200, db_index=True)
    key = models.CharField(max_length=200)
    event_type = models.CharField(max_length=200, db_index=True)
    tenant_id = models.CharField(max_length=64, db_index=True, blank=True)
    envelope = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["published_at", "id"], name="outbox_unpublished_idx")]

    def __str__(self) -> str:
        return f"{self.topic}:{self.key} {self.event_type}"


class IncidentKind(models.TextChoices):
    """Every kind of security incident, defined once (API filter, Console filter, ``record_incident``)."""

    HOOK_SIGNATURE = "hook_signature", "Hook signature"
    MODULE_SIGNATURE = "module_signature", "Module signature"
    REPLAY = "replay", "Replayed hook delivery"
    AUTH_FAILURE = "auth_failure", "Repeated authentication failures"
    SELF_APPROVAL = "self_approval", "Self-approval attempt"


class IncidentState(models.TextChoices):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class SecurityIncident(TenantOwned):
    """A refused security check (signature, replay, auth lockout, self-approval), kept for investigation."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    tenant_id = models.CharField(max_length=64, db_index=True, blank=True, help_text="Verified tenant, else AION_PLATFORM_TENANT")
    kind = models.CharField(max_length=64, db_index=True, choices=IncidentKind.choices)
    reason = models.CharField(max_length=100, db_index=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True, help_text="Request headers, secrets redacted")
    body_sha256 = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    state = models.CharField(max_length=16, choices=IncidentState.choices, default=IncidentState.OPEN, db_index=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=200, blank=True)
    note = models.TextField(blank=True, help_text="Why it was acknowledged (required by the acknowledge action)")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}/{self.reason} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker ran the heartbeat task (shown in /readyz)."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.seen_at:%H:%M:%S}"


class OutboxRelayState(models.Model):
    """The relay's lease (one relay at a time keeps per-key order) and its shared back-off while Kafka is down."""

    name = models.CharField(max_length=32, primary_key=True, default="outbox")
    holder = models.CharField(max_length=128, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} relay (failures={self.consecutive_failures})"
