"""Break-glass: kernel.breakglass applies with one approval not their own, or immediately with a justification."""

from __future__ import annotations

import pytest

from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import api_client
from aion.testing.kernel_proposals import act, assert_valid_event, change, kernel_events, persona, proposal_body, submit
from kernel import metrics

pytestmark = pytest.mark.django_db

JUSTIFICATION = "SEV1: ingest pool dropping connections, approvers unreachable"


def breakglass_count() -> float:
    return metrics.BREAKGLASS_TOTAL.labels(tenant="acme", scope="sysctl")._value.get()


def test_a_single_breakglass_approval_applies_a_two_approval_proposal(proposer, breakglass, django_capture_on_commit_callbacks):
    proposal = submit(proposer, risk_score=0.8)
    assert proposal["required_approvals"] == 2
    short = act(breakglass, proposal["id"], "breakglass", {"justification": "now"})
    assert short.status_code == 400 and "justification" in short.json()["errors"]
    before = breakglass_count()
    with django_capture_on_commit_callbacks(execute=True):
        response = act(breakglass, proposal["id"], "breakglass", {"justification": JUSTIFICATION})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "applied" and body["breakglass"] is True
    assert [a["breakglass"] for a in body["approvals"]] == [True]
    assert breakglass_count() == before + 1

    events = kernel_events(proposal["id"])
    assert [e.event_type for e in events] == ["kernel.proposal.pending", "kernel.proposal.approved", "kernel.proposal.applied"]
    for event in events[1:]:
        data = assert_valid_event(event)["data"]
        assert data["breakglass"] is True and data["rbac"]["required_role"] == "kernel.breakglass"
    audits = AuditRecord.objects.filter(
        resource_id=proposal["id"], action__in=["kernel.proposal.breakglass_approve", "kernel.proposal.apply"]
    )
    assert audits.count() == 2 and all(a.metadata["breakglass"] is True for a in audits)


def test_breakglass_is_not_the_proposers_own_approval():
    both = persona([Role.KERNEL_PROPOSER, Role.KERNEL_BREAKGLASS], name="both")
    proposal = submit(both)
    response = act(both, proposal["id"], "breakglass", {"justification": JUSTIFICATION})
    assert response.status_code == 403 and response.json()["type"].endswith("separation-of-duties")


def test_immediate_breakglass_applies_with_a_mandatory_justification(breakglass, proposer, django_capture_on_commit_callbacks):
    weak = breakglass.client.post("/v1/kernel/proposals/breakglass", proposal_body(justification="hotfix"), format="json")
    assert weak.status_code == 400 and "justification" in weak.json()["errors"]
    before = breakglass_count()
    with django_capture_on_commit_callbacks(execute=True):
        response = breakglass.client.post(
            "/v1/kernel/proposals/breakglass", proposal_body(changes=[change(to=8192)], justification=JUSTIFICATION), format="json"
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "applied" and body["breakglass"] is True and body["approvals"] == []
    assert breakglass_count() == before + 1
    for event in kernel_events(body["id"]):
        assert assert_valid_event(event)["data"]["breakglass"] is True
    assert proposer.client.get("/v1/kernel/config/sysctl").json()["document"] == {"net.core.somaxconn": 8192}


def test_breakglass_still_respects_the_guardrails(breakglass):
    response = breakglass.client.post(
        "/v1/kernel/proposals/breakglass", proposal_body(changes=[change(to=10)], justification=JUSTIFICATION), format="json"
    )
    assert response.status_code == 400 and "changes.0.to" in response.json()["errors"]


def test_breakglass_disabled_by_policy(breakglass, policy_file):
    policy_file(breakglass={"enabled": False})
    response = breakglass.client.post("/v1/kernel/proposals/breakglass", proposal_body(justification=JUSTIFICATION), format="json")
    assert response.status_code == 403 and response.json()["type"].endswith("breakglass-disabled")


def test_negative_authorisation(proposer, admin, outsider):
    proposal = submit(proposer)
    assert api_client().post("/v1/kernel/proposals/breakglass", proposal_body(), format="json").status_code == 401
    assert (
        admin.client.post("/v1/kernel/proposals/breakglass", proposal_body(justification=JUSTIFICATION), format="json").status_code == 403
    )
    assert act(admin, proposal["id"], "breakglass", {"justification": JUSTIFICATION}).status_code == 403
    assert act(outsider, proposal["id"], "breakglass", {"justification": JUSTIFICATION}).status_code == 404


def test_unknown_fields_are_rejected_on_both_breakglass_paths(proposer, breakglass):
    proposal = submit(proposer)
    response = act(breakglass, proposal["id"], "breakglass", {"justification": JUSTIFICATION, "skip": 1})
    assert response.status_code == 400 and response.json()["errors"] == {"skip": ["Unknown field."]}
    body = {**proposal_body(justification=JUSTIFICATION), "changes": [{**change(), "extra": 1}]}
    response = breakglass.client.post("/v1/kernel/proposals/breakglass", body, format="json")
    assert response.status_code == 400 and "changes.0.extra" in response.json()["errors"]
