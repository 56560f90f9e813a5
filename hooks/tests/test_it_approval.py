"""POST /v1/hooks/approval: signature accept/reject, incidents and metric, scopes and tenants, limits."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from aion.models import AuditRecord, OutboxEvent, SecurityIncident
from aion.testing.factories import OTHER_TENANT, TENANT, api_client
from aion.testing.hook_requests import (
    ACME_READONLY_SECRET,
    ACME_SECRET,
    GLOBEX_SECRET,
    approval_body,
    post_hook,
    signed_headers,
    submit_proposal,
)

pytestmark = pytest.mark.django_db


def failures(reason: str) -> float:
    return REGISTRY.get_sample_value("hook_signature_failures_total", {"reason": reason}) or 0.0


def assert_generic_401(response) -> None:
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")
    body = response.json()
    # Never says which check failed.
    assert body["detail"] == "The hook could not be verified."
    assert "reason" not in body and "signature" not in body["detail"].lower().replace("verified", "")


def test_a_correctly_signed_approval_applies_the_proposal(proposal):
    body = approval_body(proposal.pk, "approve", approver="alice")
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-1"))
    assert response.status_code == 200, response.content
    assert list(response.json()) == sorted(response.json())  # canonical key order, so replays are byte-identical
    assert response.json() == {
        "delivery_id": "dlv-1",
        "proposal_id": str(proposal.pk),
        "decision": "approve",
        "source": "chatops",
        "state": "applied",
        "approver": "alice",
    }
    proposal.refresh_from_db()
    assert proposal.state == "applied"
    approval = proposal.approvals.get()
    assert approval.approver == "hook:chatops" and approval.approver_kind == "hook"
    entry = AuditRecord.objects.get(action="hooks.approval.approve")
    assert entry.metadata["approver"] == "alice" and entry.metadata["delivery_id"] == "dlv-1"
    assert SecurityIncident.objects.count() == 0


def test_a_signed_rejection_rejects_with_the_comment_as_reason(proposal):
    body = approval_body(proposal.pk, "reject", comment="not during the freeze")
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]))
    assert response.status_code == 200
    assert response.json()["state"] == "rejected"
    proposal.refresh_from_db()
    assert proposal.reject_reason == "not during the freeze"


def test_any_matching_v1_entry_is_accepted(proposal):
    body = approval_body(proposal.pk)
    response = post_hook(body, **signed_headers(body, secrets=["an-old-secret", ACME_SECRET]))
    assert response.status_code == 200


def test_a_wrong_secret_is_a_401_and_a_security_incident(proposal):
    before = failures("bad_signature")
    body = approval_body(proposal.pk)
    response = post_hook(body, **signed_headers(body, secrets=["not-the-secret"]), REMOTE_ADDR="203.0.113.7")
    assert_generic_401(response)
    incident = SecurityIncident.objects.get()
    assert incident.kind == "hook_signature" and incident.reason == "bad_signature"
    # The signature did not verify, so acme is only claimed: filed under the platform tenant (docs/security.md).
    assert incident.tenant_id == "platform" and incident.details["claimed_tenant"] == TENANT
    assert incident.source_ip == "203.0.113.7"
    assert incident.body_sha256 == hashlib.sha256(body).hexdigest()
    assert incident.headers["x-omerta-signature"] == "[redacted]"
    assert incident.headers["x-tenant-id"] == TENANT
    assert failures("bad_signature") == before + 1
    assert AuditRecord.objects.filter(action="hook_signature.verification_failed", result="denied").count() == 1
    assert OutboxEvent.objects.filter(topic="security.incidents", event_type="security.incident").count() == 1
    proposal.refresh_from_db()
    assert proposal.state == "pending"


def test_a_tampered_body_is_refused(proposal):
    body = approval_body(proposal.pk, "approve")
    headers = signed_headers(body, secrets=[ACME_SECRET])
    tampered = approval_body(proposal.pk, "reject")
    assert_generic_401(post_hook(tampered, **headers))
    assert SecurityIncident.objects.get().reason == "bad_signature"


@pytest.mark.parametrize("offset", [-301, 301, -3600, 86400])
def test_stale_and_future_timestamps_are_refused(proposal, offset):
    before = failures("stale_timestamp")
    body = approval_body(proposal.pk)
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], timestamp=time.time() + offset))
    assert_generic_401(response)
    assert SecurityIncident.objects.get().reason == "stale_timestamp"
    assert failures("stale_timestamp") == before + 1


def test_the_tolerance_is_configurable(proposal, settings):
    settings.AION_HOOK_TIMESTAMP_TOLERANCE_SECONDS = 30
    body = approval_body(proposal.pk)
    assert_generic_401(post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], timestamp=time.time() - 60)))
    settings.AION_HOOK_TIMESTAMP_TOLERANCE_SECONDS = 120
    assert post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], timestamp=time.time() - 60)).status_code == 200


@pytest.mark.parametrize(
    ("missing", "header"),
    [
        ("HTTP_X_OMERTA_SIGNATURE", "x-omerta-signature"),
        ("HTTP_X_TENANT_ID", "x-tenant-id"),
        ("HTTP_X_OMERTA_DELIVERY", "x-omerta-delivery"),
    ],
)
def test_a_missing_header_is_a_400_naming_it(proposal, missing, header):
    body = approval_body(proposal.pk)
    headers = signed_headers(body, secrets=[ACME_SECRET])
    del headers[missing]
    response = post_hook(body, **headers)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    assert header in response.json()["detail"] and header in response.json()["errors"]
    # A missing signature is also a security incident (the runbook: failed verification).
    assert SecurityIncident.objects.filter(reason="missing_signature").exists() is (header == "x-omerta-signature")


def test_a_malformed_signature_header_is_refused(proposal):
    body = approval_body(proposal.pk)
    headers = signed_headers(body, secrets=[ACME_SECRET])
    headers["HTTP_X_OMERTA_SIGNATURE"] = "sha256=deadbeef"
    assert_generic_401(post_hook(body, **headers))
    assert SecurityIncident.objects.get().reason == "malformed_signature"


def test_an_unknown_tenant_is_refused_like_a_bad_signature(proposal):
    body = approval_body(proposal.pk)
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], tenant="initech"))
    assert_generic_401(response)
    incident = SecurityIncident.objects.get()
    assert incident.reason == "unknown_tenant"
    # never under the attacker's tenant string, which no Console user could see
    assert incident.tenant_id == "platform" and incident.details["claimed_tenant"] == "initech"


def test_another_tenants_secret_cannot_act_for_this_tenant(proposal):
    body = approval_body(proposal.pk)
    # globex's valid secret, claiming to be acme
    assert_generic_401(post_hook(body, **signed_headers(body, secrets=[GLOBEX_SECRET], tenant=TENANT)))
    # globex's valid secret for globex, naming acme's proposal: the proposal is not found in globex
    response = post_hook(body, **signed_headers(body, secrets=[GLOBEX_SECRET], tenant=OTHER_TENANT))
    assert response.status_code == 404
    assert response.json()["proposal_id"] == str(proposal.pk)
    proposal.refresh_from_db()
    assert proposal.state == "pending"


def test_a_scope_not_granted_is_a_403_incident(proposal):
    before = failures("scope_not_granted")
    body = approval_body(proposal.pk, "approve")
    response = post_hook(body, **signed_headers(body, secrets=[ACME_READONLY_SECRET]))
    assert response.status_code == 403
    assert response.json()["detail"] == "The hook source is not allowed to do this."
    incident = SecurityIncident.objects.get()
    assert incident.reason == "scope_not_granted"
    assert incident.tenant_id == TENANT and "claimed_tenant" not in incident.details  # the source verified: acme's own
    assert failures("scope_not_granted") == before + 1
    proposal.refresh_from_db()
    assert proposal.state == "pending"
    # the same source may reject: that scope is granted
    body = approval_body(proposal.pk, "reject", comment="no")
    assert post_hook(body, **signed_headers(body, secrets=[ACME_READONLY_SECRET])).json()["state"] == "rejected"


def test_a_kernel_refusal_is_reported_with_its_status(proposal):
    first = approval_body(proposal.pk, "reject", comment="no")
    assert post_hook(first, **signed_headers(first, secrets=[ACME_SECRET])).status_code == 200
    body = approval_body(proposal.pk, "approve")
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]))
    assert response.status_code == 409
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["status"] == 409


def test_an_invalid_body_is_a_400_after_verification(proposal):
    body = b'{"proposal_id": "x", "decision": "maybe"}'
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]))
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"decision", "approver"}
    assert SecurityIncident.objects.count() == 0


def test_a_body_over_1_mib_is_413(proposal):
    body = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]))
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/problem+json")


def test_repeated_failures_from_one_ip_are_rate_limited(proposal, settings):
    settings.AION_RATE_LIMITS = {**settings.AION_RATE_LIMITS, "hook_failures": "3/60"}
    body = approval_body(proposal.pk)
    for _ in range(3):
        assert post_hook(body, **signed_headers(body, secrets=["wrong"]), REMOTE_ADDR="198.51.100.9").status_code == 401
    blocked = post_hook(body, **signed_headers(body, secrets=["wrong"]), REMOTE_ADDR="198.51.100.9")
    assert blocked.status_code == 429 and blocked["Retry-After"] == "60"
    assert SecurityIncident.objects.count() == 3  # the blocked request recorded nothing
    # another address is unaffected, and a correctly signed hook is never refused (hooks/tests/test_it_hook_lockout.py)
    assert post_hook(body, **signed_headers(body, secrets=["wrong"]), REMOTE_ADDR="198.51.100.10").status_code == 401
    assert post_hook(body, **signed_headers(body, secrets=[ACME_SECRET]), REMOTE_ADDR="198.51.100.9").status_code == 200


def test_rotated_db_secret_is_accepted_inside_its_grace_and_refused_after(settings):
    from aion.auth.principal import system_principal
    from hooks.models import HookSource
    from hooks.services import create_hook_source, rotate_hook_source_secret

    settings.AION_HOOK_SOURCES = ""
    admin = system_principal(TENANT)
    _, old_secret = create_hook_source(tenant_id=TENANT, name="pager", scopes=["kernel.approve"], actor=admin)
    rotated_at = timezone.now()
    new_secret = rotate_hook_source_secret(HookSource.objects.get(name="pager"), actor=admin, grace_hours=1, now=rotated_at)
    first, second, third = (
        submit_proposal(key=k, to=v) for k, v in (("vm.swappiness", 10), ("vm.max_map_count", 262144), ("net.core.somaxconn", 4096))
    )

    body = approval_body(first.pk)
    assert post_hook(body, **signed_headers(body, secrets=[old_secret])).status_code == 200  # inside the grace
    body = approval_body(second.pk)
    assert post_hook(body, **signed_headers(body, secrets=[new_secret])).status_code == 200
    later = rotated_at + timedelta(hours=1, seconds=5)
    from unittest import mock

    body = approval_body(third.pk)
    with mock.patch("django.utils.timezone.now", return_value=later):
        refused = post_hook(body, **signed_headers(body, secrets=[old_secret], timestamp=later.timestamp()))
        accepted = post_hook(body, **signed_headers(body, secrets=[new_secret], timestamp=later.timestamp()))
    assert_generic_401(refused)
    assert accepted.status_code == 200


def test_other_methods_are_405_problems():
    response = api_client().get("/v1/hooks/approval")
    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/problem+json")
