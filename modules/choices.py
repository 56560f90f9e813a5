"""State vocabularies of the modules app (TextChoices)."""

from __future__ import annotations

from django.db import models


class Pool(models.TextChoices):
    CPU = "cpu", "CPU pool"
    GPU = "gpu", "GPU pool"


class HealthStatus(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    UP = "up", "Up"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"


class ProbeOutcome(models.TextChoices):
    """One health poll: answered in time, answered slowly, or failed (non-2xx, timeout, refused)."""

    OK = "ok", "OK"
    SLOW = "slow", "Slow"
    FAILED = "failed", "Failed"


class ActivationAction(models.TextChoices):
    ACTIVATE = "activate", "Activated"
    ROLLBACK = "rollback", "Rolled back"
    DISABLE = "disable", "Disabled"


class SignatureFailure(models.TextChoices):
    """Why a signature check refused a manifest (the incident ``reason``)."""

    MISSING = "missing_signature", "Missing signature"
    MALFORMED = "malformed_signature", "Malformed signature or payload"
    BAD = "bad_signature", "No trusted key verifies the signature"
    UNTRUSTED_KEY = "untrusted_key", "Signed by a key that is not trusted"
    RETIRED_KEY = "retired_key", "Signed by a retired key (outside its validity window)"
    DIGEST_MISMATCH = "digest_mismatch", "Signed digest differs from the manifest image digest"
    IDENTITY_MISMATCH = "identity_mismatch", "Signed image reference differs from the manifest image"
    WRONG_TYPE = "wrong_type", "Payload is not a cosign container image signature"
    UNRESOLVED = "unresolved_reference", "Signature reference cannot be resolved"
    MANIFEST_MISMATCH = "manifest_mismatch", "The signed manifest differs from this manifest (a signed field changed)"
    LEGACY_FORMAT = "legacy_signature", "An image-digest-only signature; the whole manifest must be signed (DSSE in-toto)"
