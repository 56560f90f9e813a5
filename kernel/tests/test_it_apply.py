"""POST /v1/kernel/proposals/{id}/apply: manual apply, drift check against the base revision, rebase when safe."""

from __future__ import annotations

import pytest

from aion.testing.factories import api_client
from aion.testing.kernel_proposals import act, assert_valid_event, change, kernel_events, submit
from kernel.models import ConfigRevision

pytestmark = pytest.mark.django_db


@pytest.fixture()
def manual(policy_file):
    policy_file(auto_apply=False)


def test_apply_writes_a_new_immutable_revision(proposer, admin, manual):
    proposal = submit(proposer, changes=[change(to=4096), change("vm.swappiness", None, 10)])
    act(admin, proposal["id"], "approve")
    body = act(admin, proposal["id"], "apply").json()
    assert body["state"] == "applied" and body["applied_revision"] == 1
    revision = ConfigRevision.objects.get(tenant_id="acme", scope="sysctl", number=1)
    assert revision.document == {"net.core.somaxconn": 4096, "vm.swappiness": 10}
    assert revision.parent is None and str(revision.proposal_id) == proposal["id"] and revision.author == admin.subject


def test_drift_at_apply_marks_the_proposal_failed_and_changes_nothing(proposer, admin, admin2, manual):
    first = submit(proposer, changes=[change(to=1024)])
    second = submit(proposer, changes=[change(to=2048)])  # both from the empty revision
    act(admin, first["id"], "approve")
    act(admin, second["id"], "approve")
    assert act(admin2, first["id"], "apply").status_code == 200

    response = act(admin2, second["id"], "apply")
    assert response.status_code == 409
    problem = response.json()
    assert problem["state"] == "failed" and problem["type"].endswith("drift")
    assert problem["drifted_keys"] == [{"key": "net.core.somaxconn", "from": None, "current": 1024}]
    detail = admin.client.get(f"/v1/kernel/proposals/{second['id']}").json()
    assert detail["state"] == "failed" and detail["drifted_keys"] == problem["drifted_keys"]
    assert ConfigRevision.objects.filter(scope="sysctl").count() == 1
    failed = kernel_events(second["id"])[-1]
    assert failed.event_type == "kernel.proposal.failed"
    assert assert_valid_event(failed)["data"]["drifted_keys"] == problem["drifted_keys"]


def test_a_moved_scope_with_untouched_keys_applies_on_top(proposer, admin, manual):
    first = submit(proposer, changes=[change(to=1024)])
    second = submit(proposer, changes=[change("vm.swappiness", None, 30)])
    for proposal in (first, second):
        act(admin, proposal["id"], "approve")
    act(admin, first["id"], "apply")
    body = act(admin, second["id"], "apply").json()
    assert body["state"] == "applied" and body["applied_revision"] == 2 and body["base_revision"] is None
    assert ConfigRevision.objects.get(number=2).document == {"net.core.somaxconn": 1024, "vm.swappiness": 30}


def test_null_to_removes_a_key(proposer, admin):
    applied = submit(proposer, changes=[change(to=1024)])
    act(admin, applied["id"], "approve")
    removal = submit(proposer, changes=[change(frm=1024, to=None)])
    assert act(admin, removal["id"], "approve").json()["state"] == "applied"
    assert ConfigRevision.objects.get(number=2).document == {}


def test_negative_authorisation(proposer, admin, outsider, manual):
    proposal = submit(proposer)
    act(admin, proposal["id"], "approve")
    assert api_client().post(f"/v1/kernel/proposals/{proposal['id']}/apply").status_code == 401
    assert act(proposer, proposal["id"], "apply").status_code == 403
    assert act(outsider, proposal["id"], "apply").status_code == 404
    pending = submit(proposer, changes=[change("vm.swappiness", None, 1)])
    conflict = act(admin, pending["id"], "apply")
    assert conflict.status_code == 409 and conflict.json()["state"] == "pending"


def test_auto_apply_on_a_drifted_scope_leaves_the_approved_proposal_failed(proposer, admin):
    first = submit(proposer, changes=[change(to=1024)])
    second = submit(proposer, changes=[change(to=2048)])
    act(admin, first["id"], "approve")
    response = act(admin, second["id"], "approve")
    assert response.status_code == 200  # the approval counted; the apply that followed failed on drift
    body = response.json()
    assert body["state"] == "failed" and body["drifted_keys"][0]["current"] == 1024 and len(body["approvals"]) == 1
    assert [e.event_type for e in kernel_events(second["id"])][-2:] == ["kernel.proposal.approved", "kernel.proposal.failed"]


def test_apply_takes_no_fields_and_an_unknown_one_is_a_400(proposer, admin, manual):
    proposal = submit(proposer)
    assert act(admin, proposal["id"], "approve").json()["state"] == "approved"
    response = act(admin, proposal["id"], "apply", {"skip_drift_check": True})
    assert response.status_code == 400 and response.json()["errors"] == {"skip_drift_check": ["Unknown field."]}
    assert not ConfigRevision.objects.exists()
