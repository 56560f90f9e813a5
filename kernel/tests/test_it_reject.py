"""POST /v1/kernel/proposals/{id}/reject: reason required, from pending or approved only."""

from __future__ import annotations

import pytest

from aion.testing.factories import api_client
from aion.testing.kernel_proposals import act, assert_valid_event, change, kernel_events, submit

pytestmark = pytest.mark.django_db


def test_reject_needs_a_reason_and_records_it(proposer, admin):
    proposal = submit(proposer)
    missing = act(admin, proposal["id"], "reject", {})
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    blank = act(admin, proposal["id"], "reject", {"reason": "   "})
    assert blank.status_code == 400
    response = act(admin, proposal["id"], "reject", {"reason": "wrong pool"}, HTTP_IF_MATCH=proposal["etag"])
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "rejected" and body["reject_reason"] == "wrong pool" and body["decided_by"] == admin.subject
    event = kernel_events(proposal["id"])[-1]
    assert event.event_type == "kernel.proposal.rejected"
    assert assert_valid_event(event)["data"]["reason"] == "wrong pool"


def test_an_approved_proposal_can_still_be_rejected(proposer, admin, admin2, policy_file):
    policy_file(auto_apply=False)
    proposal = submit(proposer, changes=[change("vm.swappiness", None, 20)])
    assert act(admin, proposal["id"], "approve").json()["state"] == "approved"
    assert act(admin2, proposal["id"], "reject", {"reason": "changed my mind"}).json()["state"] == "rejected"
    again = act(admin2, proposal["id"], "reject", {"reason": "twice"})
    assert again.status_code == 409 and again.json()["state"] == "rejected"
    assert act(admin2, proposal["id"], "approve").status_code == 409


def test_negative_authorisation(proposer, outsider):
    proposal = submit(proposer)
    assert api_client().post(f"/v1/kernel/proposals/{proposal['id']}/reject", {"reason": "x"}, format="json").status_code == 401
    assert act(proposer, proposal["id"], "reject", {"reason": "x"}).status_code == 403
    assert act(outsider, proposal["id"], "reject", {"reason": "x"}).status_code == 404


def test_an_unknown_field_is_a_400_and_nothing_is_rejected(proposer, admin):
    proposal = submit(proposer)
    response = act(admin, proposal["id"], "reject", {"reason": "wrong pool", "force": True})
    assert response.status_code == 400 and response.json()["errors"] == {"force": ["Unknown field."]}
    assert admin.client.get(f"/v1/kernel/proposals/{proposal['id']}").json()["state"] == "pending"
