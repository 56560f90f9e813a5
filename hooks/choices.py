"""Choices (states and scopes) of the hooks app."""

from django.db import models


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RETRYING = "retrying", "Retrying"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class HookScope(models.TextChoices):
    KERNEL_APPROVE = "kernel.approve", "Approve kernel proposals"
    KERNEL_REJECT = "kernel.reject", "Reject kernel proposals"


class ApprovalDecision(models.TextChoices):
    APPROVE = "approve", "Approve"
    REJECT = "reject", "Reject"


# The scope each inbound decision needs.
SCOPE_FOR_DECISION = {ApprovalDecision.APPROVE: HookScope.KERNEL_APPROVE, ApprovalDecision.REJECT: HookScope.KERNEL_REJECT}


class SignatureFailure(models.TextChoices):
    """The ``reason`` label of ``hook_signature_failures_total`` and of the SecurityIncident."""

    MISSING_SIGNATURE = "missing_signature", "Missing signature header"
    MALFORMED_SIGNATURE = "malformed_signature", "Malformed signature header"
    STALE_TIMESTAMP = "stale_timestamp", "Timestamp outside the tolerance"
    UNKNOWN_TENANT = "unknown_tenant", "No hook source for the tenant"
    BAD_SIGNATURE = "bad_signature", "No secret matches"
    SCOPE_NOT_GRANTED = "scope_not_granted", "Scope not granted"
