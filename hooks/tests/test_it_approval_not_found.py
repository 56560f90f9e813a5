"""A signed hook naming a proposal the tenant does not have: a 404 problem, audited, counted as ``not_found``.

``hook_approvals_total{result="not_found"}`` is graphed in deploy/grafana/webhooks.json; before the services
split every missing proposal was counted as ``refused`` and that series never moved.
"""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from aion.models import AuditRecord, AuditResult
from aion.testing.factories import OTHER_TENANT
from aion.testing.hook_requests import ACME_SECRET, GLOBEX_SECRET, approval_body, post_hook, signed_headers

pytestmark = pytest.mark.django_db


def approvals(decision: str, result: str) -> float:
    return REGISTRY.get_sample_value("hook_approvals_total", {"decision": decision, "result": result}) or 0.0


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_proposal_id_that_does_not_exist_is_a_404_counted_as_not_found(decision):
    missing = uuid.uuid4()
    not_found, refused = approvals(decision, "not_found"), approvals(decision, "refused")
    body = approval_body(missing, decision, comment="no")
    response = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-missing"))
    assert response.status_code == 404, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == 404 and problem["proposal_id"] == str(missing) and problem["decision"] == decision
    assert problem["delivery_id"] == "dlv-missing" and problem["source"] == "chatops"
    assert approvals(decision, "not_found") == not_found + 1
    assert approvals(decision, "refused") == refused
    entry = AuditRecord.objects.get(action=f"hooks.approval.{decision}")
    assert entry.result == AuditResult.FAILED and entry.metadata["status"] == 404 and entry.resource_id == str(missing)


def test_a_duplicate_of_a_not_found_hook_replays_the_404_without_counting_again():
    body = approval_body(uuid.uuid4())
    headers = signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-missing-twice")
    first = post_hook(body, **headers)
    counted = approvals("approve", "not_found")
    again = post_hook(body, **headers)
    assert first.status_code == again.status_code == 404
    assert again["Idempotent-Replay"] == "true" and again.content == first.content
    assert approvals("approve", "not_found") == counted


def test_another_tenants_proposal_and_a_malformed_id_are_not_found_too(proposal):
    not_found, refused = approvals("approve", "not_found"), approvals("approve", "refused")
    theirs = approval_body(proposal.pk)  # acme's proposal, named by globex's verified source
    assert post_hook(theirs, **signed_headers(theirs, secrets=[GLOBEX_SECRET], tenant=OTHER_TENANT)).status_code == 404
    malformed = approval_body("not-a-uuid")
    assert post_hook(malformed, **signed_headers(malformed, secrets=[ACME_SECRET])).status_code == 404
    assert approvals("approve", "not_found") == not_found + 2
    assert approvals("approve", "refused") == refused
    proposal.refresh_from_db()
    assert proposal.state == "pending"


def test_a_kernel_refusal_of_an_existing_proposal_is_still_counted_as_refused(proposal):
    rejection = approval_body(proposal.pk, "reject", comment="no")
    assert post_hook(rejection, **signed_headers(rejection, secrets=[ACME_SECRET])).status_code == 200
    not_found, refused = approvals("approve", "not_found"), approvals("approve", "refused")
    body = approval_body(proposal.pk, "approve")
    assert post_hook(body, **signed_headers(body, secrets=[ACME_SECRET])).status_code == 409
    assert approvals("approve", "refused") == refused + 1
    assert approvals("approve", "not_found") == not_found
