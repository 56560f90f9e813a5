"""Models of the modules app: modules, their immutable signed versions, activation history and health."""

from __future__ import annotations

from typing import Any

from django.db import models

from aion.tenancy import TenantOwned
from modules.choices import ActivationAction, HealthStatus, Pool, ProbeOutcome


class Module(TenantOwned):
    """One named module of a tenant: which version is active, whether it is enabled, and its health."""

    name = models.SlugField(max_length=63)
    active_version = models.ForeignKey("modules.ModuleVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    health = models.CharField(max_length=16, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN)
    health_checked_at = models.DateTimeField(null=True, blank=True)
    health_latency_ms = models.FloatField(null=True, blank=True)
    health_changed_at = models.DateTimeField(null=True, blank=True)
    flap_count = models.PositiveIntegerField(default=0)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_health_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "name"], name="modules_module_unique_name")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.name}"


class ImmutableVersion(Exception):
    """A stored module version was about to change; versions are append-only."""


class ModuleVersion(TenantOwned):
    """A registered, verified manifest. Never updated or deleted: a new manifest is a new version."""

    module = models.ForeignKey(Module, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=128)
    manifest = models.JSONField()
    manifest_sha256 = models.CharField(max_length=64)  # over the canonical JSON of the manifest
    image = models.CharField(max_length=512)
    image_digest = models.CharField(max_length=80)
    runtime = models.CharField(max_length=64, blank=True)
    pool = models.CharField(max_length=8, choices=Pool.choices)
    node_selector = models.JSONField(default=dict)
    intents = models.JSONField(default=list)
    endpoint = models.URLField(max_length=512)
    health_path = models.CharField(max_length=256, default="/healthz")
    signature_key_id = models.CharField(max_length=128)  # the trusted key that verified it at registration
    registered_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["module", "-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["module", "version"], name="modules_version_unique")]

    def __str__(self) -> str:
        return f"{self.module.name}@{self.version}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ImmutableVersion(f"module version {self} is immutable")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ImmutableVersion(f"module version {self} is immutable")

    @property
    def health_url(self) -> str:
        return self.endpoint.rstrip("/") + "/" + self.health_path.lstrip("/")

    def release_fields(self) -> dict[str, Any]:
        """The columns taken from the signed manifest (what the API shows, what drift is checked against)."""
        return {
            "version": self.version,
            "image": self.image,
            "image_digest": self.image_digest,
            "runtime": self.runtime,
            "pool": self.pool,
            "node_selector": self.node_selector,
            "intents": list(self.intents),
            "endpoint": self.endpoint,
            "health_path": self.health_path,
        }


class ModuleActivation(TenantOwned):
    """The activation history: every activate, rollback and disable, with who and why."""

    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="activations")
    action = models.CharField(max_length=16, choices=ActivationAction.choices)
    from_version = models.ForeignKey(ModuleVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(ModuleVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    signature_key_id = models.CharField(max_length=128, blank=True)  # the key that verified it at this activation
    reason = models.CharField(max_length=500, blank=True)
    actor = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["module", "-id"]

    def __str__(self) -> str:
        return f"{self.module.name}: {self.action} -> {self.to_version.version if self.to_version else '-'}"


class ModuleHealthCheck(TenantOwned):
    """One health poll of a module host: outcome, HTTP status, latency and the error or body excerpt."""

    module = models.ForeignKey(Module, on_delete=models.CASCADE, related_name="health_checks")
    version = models.CharField(max_length=128)
    url = models.CharField(max_length=600)
    outcome = models.CharField(max_length=8, choices=ProbeOutcome.choices)
    status_after = models.CharField(max_length=16, choices=HealthStatus.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["module", "-checked_at", "-id"]

    def __str__(self) -> str:
        return f"{self.module.name} {self.outcome} at {self.checked_at:%Y-%m-%d %H:%M:%S}"
