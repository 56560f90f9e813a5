"""States and scopes of kernel proposals (TextChoices used by models, filters and serializers)."""

from __future__ import annotations

from django.db import models


class ProposalState(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    APPLIED = "applied"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    EXPIRED = "expired"
    FAILED = "failed"


# States a proposal can still leave by approval, rejection or expiry.
OPEN_STATES = (ProposalState.PENDING, ProposalState.APPROVED)
# States nothing can leave.
FINAL_STATES = (ProposalState.ROLLED_BACK, ProposalState.REJECTED, ProposalState.EXPIRED, ProposalState.FAILED)


class RevisionKind(models.TextChoices):
    APPLY = "apply"
    ROLLBACK = "rollback"


# The audit records' resource types (``AuditRecord.resource_type``) of proposals and revisions.
RESOURCE_TYPE = "kernel.proposal"
REVISION_RESOURCE_TYPE = "kernel.config_revision"


class HostState(models.TextChoices):
    """A host's state (issue 17): the worst of its scopes', or stale when its reports stopped."""

    CONVERGED = "converged"  # observed == desired on the effective revision
    PENDING = "pending"  # not yet on the effective revision
    DRIFTED = "drifted"  # on the effective revision, but an observed value differs from the desired one
    FAILED = "failed"  # the agent could not apply a key, or reported errors
    STALE = "stale"  # no report within AION_KERNEL_HOST_STALE_SECONDS
