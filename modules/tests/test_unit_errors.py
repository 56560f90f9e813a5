"""modules' refusals are aion.errors kinds: each keeps the API status and problem type it always had."""

from __future__ import annotations

import pytest

from aion.errors import DomainError
from aion.problems import exception_handler
from modules import services

# (refusal, status, type slug): what the API answered before the refusals became domain errors.
PINNED = [
    (services.ManifestRefused, 422, "invalid-manifest"),
    (services.SignatureRefused, 422, "signature-rejected"),
    (services.ManifestMismatch, 422, "manifest-mismatch"),
    (services.VersionConflict, 409, "version-conflict"),
    (services.UnknownVersion, 404, "version-not-found"),
    (services.NoRollbackTarget, 409, "no-rollback-target"),
]


@pytest.mark.parametrize(("refusal", "status", "slug"), PINNED)
def test_each_refusal_keeps_its_status_and_type(refusal, status, slug):
    error = refusal("refused", errors={"manifest.name": ["bad"]}, key_id="k1")
    assert isinstance(error, services.ModuleActionError) and isinstance(error, DomainError)
    assert not hasattr(error, "status")  # services know no HTTP
    response = exception_handler(error, {})
    assert response.status_code == status
    assert response.data["type"] == f"urn:aion:problem:{slug}"
    assert response.data["errors"] == {"manifest.name": ["bad"]} and response.data["key_id"] == "k1"
