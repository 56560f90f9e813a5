"""POST /v1/kernel/proposals/{id}/rollback: restores the parent document as a new revision; history kept."""

from __future__ import annotations

import pytest

from aion.testing.factories import api_client
from aion.testing.kernel_proposals import act, assert_valid_event, change, kernel_events, submit
from kernel import metrics
from kernel.models import ConfigRevision

pytestmark = pytest.mark.django_db


def rollbacks(tenant: str = "acme", scope: str = "sysctl") -> float:
    return metrics.ROLLBACKS_TOTAL.labels(tenant=tenant, scope=scope)._value.get()


def test_rollback_restores_the_parent_as_a_new_revision(proposer, admin, admin2, django_capture_on_commit_callbacks):
    first = submit(proposer, changes=[change(to=1024)])
    act(admin, first["id"], "approve")
    second = submit(proposer, changes=[change(frm=1024, to=2048), change("vm.swappiness", None, 5)])
    act(admin, second["id"], "approve")
    before = rollbacks()

    assert act(admin2, second["id"], "rollback", {}).status_code == 400  # reason required
    with django_capture_on_commit_callbacks(execute=True):
        response = act(admin2, second["id"], "rollback", {"reason": "latency regression"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "rolled_back" and body["rollback_reason"] == "latency regression"
    assert body["applied_revision"] == 2 and body["rollback_revision"] == 3
    assert rollbacks() == before + 1

    revisions = {r.number: r for r in ConfigRevision.objects.filter(scope="sysctl")}
    assert sorted(revisions) == [1, 2, 3]  # history is never rewritten
    assert revisions[3].document == revisions[1].document == {"net.core.somaxconn": 1024}
    assert revisions[3].kind == "rollback" and revisions[3].parent_id == revisions[2].pk

    event = kernel_events(second["id"])[-1]
    data = assert_valid_event(event)["data"]
    assert event.event_type == "kernel.proposal.rolled_back"
    assert data["rbac"]["required_role"] == "kernel.admin" and data["rbac"]["actor"] == admin2.subject
    assert data["revision"] == 3 and data["restored_revision"] == 1

    config = admin.client.get("/v1/kernel/config/sysctl").json()
    assert config["revision"] == 3 and config["document"] == {"net.core.somaxconn": 1024}
    again = act(admin2, second["id"], "rollback", {"reason": "twice"})
    assert again.status_code == 409 and again.json()["state"] == "rolled_back"


def test_rolling_back_the_first_revision_restores_an_empty_document(proposer, admin):
    proposal = submit(proposer)
    act(admin, proposal["id"], "approve")
    assert act(admin, proposal["id"], "rollback", {"reason": "undo"}).json()["state"] == "rolled_back"
    assert ConfigRevision.objects.get(number=2).document == {}


def test_a_superseded_proposal_cannot_be_rolled_back_before_the_later_one(proposer, admin):
    first = submit(proposer, changes=[change(to=1024)])
    act(admin, first["id"], "approve")
    second = submit(proposer, changes=[change("vm.swappiness", None, 5)])
    act(admin, second["id"], "approve")
    response = act(admin, first["id"], "rollback", {"reason": "undo"})
    assert response.status_code == 409 and response.json()["type"].endswith("superseded")
    assert act(admin, second["id"], "rollback", {"reason": "undo"}).status_code == 200
    assert act(admin, first["id"], "rollback", {"reason": "undo"}).status_code == 409  # revision 3 is on top now


def test_only_applied_proposals_roll_back_and_negative_authorisation(proposer, admin, outsider):
    pending = submit(proposer)
    conflict = act(admin, pending["id"], "rollback", {"reason": "x"})
    assert conflict.status_code == 409 and conflict.json()["state"] == "pending"
    act(admin, pending["id"], "approve")
    assert api_client().post(f"/v1/kernel/proposals/{pending['id']}/rollback", {"reason": "x"}, format="json").status_code == 401
    assert act(proposer, pending["id"], "rollback", {"reason": "x"}).status_code == 403
    assert act(outsider, pending["id"], "rollback", {"reason": "x"}).status_code == 404


def test_an_unknown_field_is_a_400_and_nothing_is_rolled_back(proposer, admin):
    proposal = submit(proposer)
    assert act(admin, proposal["id"], "approve").json()["state"] == "applied"
    response = act(admin, proposal["id"], "rollback", {"reason": "bad", "to_revision": 0})
    assert response.status_code == 400 and response.json()["errors"] == {"to_revision": ["Unknown field."]}
    assert ConfigRevision.objects.count() == 1
