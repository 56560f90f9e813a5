"""POST /v1/kernel/proposals: policy validation, drift against the current revision, RBAC, event and audit."""

from __future__ import annotations

import pytest

from aion.models import AuditRecord
from aion.testing.factories import api_client
from aion.testing.kernel_proposals import act, assert_valid_event, change, kernel_events, proposal_body, submit
from kernel.models import Proposal

pytestmark = pytest.mark.django_db


def test_a_valid_proposal_is_stored_pending_with_etag_event_and_audit(proposer):
    response = proposer.client.post("/v1/kernel/proposals", proposal_body(target="pool-gpu-a", ttl_seconds=600), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "pending"
    assert body["scope"] == "sysctl" and body["target"] == "pool-gpu-a"
    assert body["changes"] == [{"key": "net.core.somaxconn", "from": None, "to": 1024}]
    assert body["required_approvals"] == 1 and body["approvals"] == []
    assert len(body["content_hash"]) == 64 and body["proposer"] == proposer.subject
    assert body["ttl_seconds"] == 600 and body["base_revision"] is None
    assert response["ETag"] == body["etag"]
    assert response["Location"] == f"/v1/kernel/proposals/{body['id']}"

    [event] = kernel_events(body["id"])
    envelope = assert_valid_event(event)
    assert envelope["type"] == "kernel.proposal.pending" and envelope["tenant_id"] == "acme"
    audit = AuditRecord.objects.get(resource_type="kernel.proposal", resource_id=body["id"])
    assert audit.action == "kernel.proposal.submit" and audit.after["state"] == "pending" and audit.before is None


def test_risk_band_sets_required_approvals(proposer):
    assert submit(proposer, risk_score=0.49)["required_approvals"] == 1
    assert submit(proposer, risk_score=0.5, changes=[change("vm.swappiness", None, 10)])["required_approvals"] == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"scope": "bogus"}, "scope"),
        ({"changes": [change("kernel.panic", None, 1)]}, "changes.0.key"),
        ({"changes": [change(to=64)]}, "changes.0.to"),
        ({"changes": [change(to=70000)]}, "changes.0.to"),
        ({"changes": [change(to="1024")]}, "changes.0.to"),
        ({"changes": [change(to=True)]}, "changes.0.to"),
        ({"changes": [change(), change()]}, "changes.1.key"),
        ({"changes": [change(frm=1024, to=1024)]}, "changes.0.to"),
        ({"risk_score": 0.99}, "risk_score"),
        ({"ttl_seconds": 10**9}, "ttl_seconds"),
    ],
)
def test_a_policy_breach_is_a_400_with_field_errors(proposer, overrides, field):
    response = proposer.client.post("/v1/kernel/proposals", proposal_body(**overrides), format="json")
    assert response.status_code == 400, response.json()
    problem = response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert field in problem["errors"], problem
    assert not Proposal.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "sysctl", "justification": "x", "risk_score": 0.1}, "changes"),
        (proposal_body(changes=[{"key": "vm.swappiness", "to": 5}]), "changes.0.from"),
        (proposal_body(changes=[{"key": "vm.swappiness", "from": None, "to": {"a": 1}}]), "changes.0.to"),
        (proposal_body(changes=[]), "changes"),
        (proposal_body(risk_score=1.5), "risk_score"),
        (proposal_body(justification=""), "justification"),
    ],
)
def test_malformed_bodies_are_400_problems(proposer, body, field):
    response = proposer.client.post("/v1/kernel/proposals", body, format="json")
    assert response.status_code == 400
    assert any(name.startswith(field) for name in response.json()["errors"]), response.json()


def test_from_must_equal_the_current_value_else_409_with_drifted_keys(proposer, admin):
    first = submit(proposer)
    assert act(admin, first["id"], "approve").json()["state"] == "applied"  # somaxconn is now 1024

    response = proposer.client.post(
        "/v1/kernel/proposals",
        proposal_body(changes=[change(frm=None, to=2048), change("vm.swappiness", None, 10)]),
        format="json",
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["drifted_keys"] == [{"key": "net.core.somaxconn", "from": None, "current": 1024}]
    assert problem["current_revision"] == 1

    ok = submit(proposer, changes=[change(frm=1024, to=2048)])
    assert ok["base_revision"] == 1


def test_negative_authorisation(proposer, admin, outsider):
    assert api_client().post("/v1/kernel/proposals", proposal_body(), format="json").status_code == 401
    # kernel.admin alone may approve, not propose
    denied = admin.client.post("/v1/kernel/proposals", proposal_body(), format="json")
    assert denied.status_code == 403 and denied["Content-Type"].startswith("application/problem+json")
    # another tenant's proposal is invisible
    theirs = submit(outsider)
    assert proposer.client.get(f"/v1/kernel/proposals/{theirs['id']}").status_code == 404
    assert proposer.client.get("/v1/kernel/proposals").json()["count"] == 0


def test_a_missing_or_broken_policy_refuses_with_503(proposer, policy_file):
    policy_file("scopes: [not, a, mapping]\n")
    response = proposer.client.post("/v1/kernel/proposals", proposal_body(), format="json")
    assert response.status_code == 503 and response.json()["type"].endswith("policy-unavailable")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (proposal_body(changes=[{**change(), "extra": 1}]), "changes.0.extra"),
        (
            proposal_body(changes=[change("vm.swappiness", None, 10), {"key": "net.core.somaxconn", "from": None, "too": 2048}]),
            "changes.1.too",
        ),
        ({**proposal_body(), "risk": 0.9}, "risk"),
        ({**proposal_body(), "required_approvals": 0}, "required_approvals"),
        ({**proposal_body(), "state": "applied"}, "state"),
    ],
)
def test_unknown_fields_are_rejected_not_dropped(proposer, body, field):
    """A typo or an unexpected field must not silently change what is proposed."""
    response = proposer.client.post("/v1/kernel/proposals", body, format="json")
    assert response.status_code == 400, response.json()
    problem = response.json()
    assert response["Content-Type"].startswith("application/problem+json")
    assert problem["errors"][field] == ["Unknown field."], problem
    assert not Proposal.objects.exists() and not kernel_events()


def test_unknown_fields_are_reported_with_the_other_field_errors(proposer):
    body = {**proposal_body(risk_score=2), "ttl": 60}
    errors = proposer.client.post("/v1/kernel/proposals", body, format="json").json()["errors"]
    assert set(errors) >= {"ttl", "risk_score"}, errors
