"""Models of the kernel app: versioned configuration per tenant and scope, proposals and approvals.

``ConfigRevision`` rows are immutable (history is never rewritten); ``ConfigScope``
points at the current revision and is the row locked to serialise applies on a scope.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from aion.tenancy import TenantOwned
from kernel.choices import HostState, ProposalState, RevisionKind


class ConfigScope(TenantOwned):
    """The head of one tenant's scope: the current revision module hosts read (locked while applying)."""

    scope = models.CharField(max_length=64)
    current = models.ForeignKey("ConfigRevision", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant_id", "scope"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "scope"], name="kernel_scope_unique")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.scope}"


class ConfigRevision(TenantOwned):
    """One immutable full document (key -> value) of a scope, numbered 1, 2, ... per tenant and scope."""

    scope = models.CharField(max_length=64)
    number = models.PositiveIntegerField()
    document = models.JSONField(default=dict)
    sha256 = models.CharField(max_length=64)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    proposal = models.ForeignKey("Proposal", null=True, blank=True, on_delete=models.PROTECT, related_name="revisions")
    kind = models.CharField(max_length=16, choices=RevisionKind.choices, default=RevisionKind.APPLY)
    author = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant_id", "scope", "-number"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "scope", "number"], name="kernel_revision_unique")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.scope}@{self.number}"


class Proposal(TenantOwned):
    """A governed change of one scope: changes bound by ``content_hash``, approvals, state and timestamps."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    scope = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True, help_text="Optional subset, e.g. a node pool")
    changes = models.JSONField(help_text="[{key, from, to}]")
    justification = models.TextField()
    risk_score = models.FloatField()
    ttl_seconds = models.PositiveIntegerField()
    expires_at = models.DateTimeField(db_index=True)
    base_revision = models.ForeignKey(ConfigRevision, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    content_hash = models.CharField(max_length=64)
    proposer = models.CharField(max_length=200, db_index=True)
    proposer_kind = models.CharField(max_length=16, blank=True)
    required_approvals = models.PositiveSmallIntegerField()
    auto_apply = models.BooleanField(default=True, help_text="Policy snapshot: the final approval applies")
    breakglass = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=ProposalState.choices, default=ProposalState.PENDING, db_index=True)
    # Bumped on every change; the ETag derives from it so a stale page or client gets 412.
    version = models.PositiveIntegerField(default=1)
    drifted_keys = models.JSONField(default=list, blank=True)
    reject_reason = models.TextField(blank=True)
    rollback_reason = models.TextField(blank=True)
    decided_by = models.CharField(max_length=200, blank=True, help_text="Who rejected, applied or rolled back")
    applied_revision = models.ForeignKey(ConfigRevision, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    rollback_revision = models.ForeignKey(ConfigRevision, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    rejected_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["tenant_id", "state", "created_at"], name="kernel_prop_tenant_state_idx")]

    def __str__(self) -> str:
        return f"{self.scope} proposal {self.id} ({self.state})"


class Approval(models.Model):
    """One distinct approver's approval of a proposal, bound to the content hash they saw."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="approvals")
    approver = models.CharField(max_length=200)
    approver_kind = models.CharField(max_length=16, blank=True)
    roles = models.JSONField(default=list)
    comment = models.TextField(blank=True)
    content_hash = models.CharField(max_length=64)
    breakglass = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        # The same approver counts once, even under concurrent requests.
        constraints = [models.UniqueConstraint(fields=["proposal", "approver"], name="kernel_approval_once")]

    def __str__(self) -> str:
        return f"{self.approver} approved {self.proposal_id}"


class Host(TenantOwned):
    """A machine a node agent reports for (issue 17): its pool, its last report and its state as of that report.

    ``state`` is what the last report showed (never ``stale``: staleness is read against the clock,
    and a newer revision makes a converged host pending without a report; ``kernel.hosts`` computes
    the live state). It is kept to detect transitions, e.g. the first report of drift."""

    name = models.CharField(max_length=253)
    pool = models.CharField(max_length=63, db_index=True)
    agent_version = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=HostState.choices, default=HostState.PENDING)
    errors = models.JSONField(default=list, blank=True)
    reports = models.PositiveBigIntegerField(default=0)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_report_at = models.DateTimeField(default=timezone.now, db_index=True)
    state_since = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant_id", "name"]
        constraints = [models.UniqueConstraint(fields=["tenant_id", "name"], name="kernel_host_unique")]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.name} ({self.pool})"


class HostScope(models.Model):
    """The latest report of one host for one scope: the revision it applied, observed values and per-key results."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="scopes")
    scope = models.CharField(max_length=64)
    revision = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    observed = models.JSONField(default=dict, blank=True)
    results = models.JSONField(default=dict, blank=True)
    reported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["host", "scope"]
        constraints = [models.UniqueConstraint(fields=["host", "scope"], name="kernel_host_scope_unique")]

    def __str__(self) -> str:
        return f"{self.host_id}:{self.scope}@{self.revision}"
