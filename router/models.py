"""Router models: policy revisions (and the one active pointer), tasks and runtime samples."""

from __future__ import annotations

import difflib
import uuid

from django.db import models
from django.utils import timezone

from aion.tenancy import TenantOwned
from router.choices import Outcome, PreferredEngine, Priority, RevisionSource, TaskStatus


class PolicyRevision(models.Model):
    """One stored version of the routing policy file (platform-wide, not per tenant)."""

    number = models.PositiveIntegerField(unique=True)
    content = models.TextField()
    sha256 = models.CharField(max_length=64, db_index=True)
    author = models.CharField(max_length=200)
    author_tenant_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    diff = models.TextField(blank=True, help_text="Unified diff from the previously active revision")
    source = models.CharField(max_length=16, choices=RevisionSource.choices, default=RevisionSource.RELOAD)
    restored_from = models.PositiveIntegerField(null=True, blank=True, help_text="For rollbacks: the revision re-activated")
    path = models.CharField(max_length=500, blank=True)
    # A submitted revision (POST /v1/router/policy/revisions) waits here until a reload names it.
    pending = models.BooleanField(default=False, help_text="Submitted, not yet activated by a reload")
    training_report = models.JSONField(
        null=True, blank=True, help_text="The training run that produced it: samples used, metrics before and after, decision"
    )

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"router policy r{self.number} ({self.sha256[:12]})"

    @classmethod
    def next_number_and_diff(cls, previous: PolicyRevision | None, content: str) -> tuple[int, str]:
        """The number a new revision of CONTENT takes, and its unified diff from PREVIOUS (the active one, or none).

        Call it under the ``PolicyState`` row lock, which serialises the numbering."""
        number = (cls.objects.order_by("-number").values_list("number", flat=True).first() or 0) + 1
        diff = "".join(
            difflib.unified_diff(
                (previous.content if previous else "").splitlines(keepends=True),
                content.splitlines(keepends=True),
                fromfile=f"r{previous.number}" if previous else "empty",
                tofile=f"r{number}",
            )
        )
        return number, diff


class PolicyState(models.Model):
    """The singleton row (pk=1) naming the active revision; processes compare its number per request."""

    active_number = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"active router policy r{self.active_number}"


class Task(TenantOwned):
    """A unit of work routed to a module host or a provider, executed by a Celery worker."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    intent = models.CharField(max_length=200, db_index=True)
    params = models.JSONField(default=dict, blank=True)
    preferred_engine = models.CharField(max_length=8, choices=PreferredEngine.choices, default=PreferredEngine.AUTO)
    priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    sla = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=TaskStatus.choices, default=TaskStatus.PENDING, db_index=True)
    # engine {route, target, chosen_by, reason} of the attempt that decided the outcome
    route = models.CharField(max_length=8, blank=True)
    target = models.CharField(max_length=200, blank=True, db_index=True)
    strategy = models.CharField(max_length=16, blank=True)
    chosen_by = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    policy_revision = models.PositiveIntegerField(null=True, blank=True)
    fallbacks = models.JSONField(default=list, blank=True)
    attempts = models.JSONField(default=list, blank=True, help_text="One entry per target call")
    output = models.JSONField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_sha256 = models.CharField(max_length=64, blank=True)
    submitted_by = models.CharField(max_length=200, blank=True)
    runs = models.PositiveIntegerField(default=0, help_text="Times a worker claimed it (more than 1 after a worker loss)")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant_id", "idempotency_key"],
                condition=~models.Q(idempotency_key=""),
                name="router_task_unique_idempotency_key",
            )
        ]
        indexes = [models.Index(fields=["tenant_id", "status", "created_at"])]

    def __str__(self) -> str:
        return f"task {self.id} {self.intent} {self.status}"


class RuntimeSample(TenantOwned):
    """One attempt against one target: latency, outcome, tokens and cost (feeds strategies and budgets).

    ``sample_id`` travels with the sample on aion.metrics.runtime; the runtime consumer inserts on it with
    conflicts ignored, so a re-delivered sample (or one the worker already wrote) is counted once. Rows from
    before sample ids existed have none (NULLs never conflict).
    """

    sample_id = models.UUIDField(default=uuid.uuid4, unique=True, null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    task_id = models.UUIDField(null=True, blank=True, db_index=True)
    target = models.CharField(max_length=200)
    route = models.CharField(max_length=8)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    latency_ms = models.FloatField()
    tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target", "created_at"]), models.Index(fields=["tenant_id", "created_at"])]

    def __str__(self) -> str:
        return f"{self.target} {self.outcome} {self.latency_ms:.0f}ms"
