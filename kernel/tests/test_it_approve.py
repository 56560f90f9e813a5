"""POST /v1/kernel/proposals/{id}/approve: RBAC in the action, separation of duties, ETag binding, events."""

from __future__ import annotations

import pytest

from aion.auth.principal import Principal
from aion.errors import NotAllowed
from aion.models import AuditRecord
from aion.problems import domain_status
from aion.roles import Role
from aion.testing.factories import api_client
from aion.testing.kernel_proposals import act, assert_valid_event, change, kernel_events, persona, submit
from kernel import services
from kernel.errors import ProposalNotFound
from kernel.models import Proposal

pytestmark = pytest.mark.django_db


def test_one_approval_below_the_band_approves_and_auto_applies(proposer, admin):
    proposal = submit(proposer)
    response = act(admin, proposal["id"], "approve", {"comment": "looks right"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["state"] == "applied" and body["applied_revision"] == 1
    assert body["approvals"][0]["approver"] == admin.subject
    assert body["approvals"][0]["comment"] == "looks right"
    assert body["approvals"][0]["content_hash"] == proposal["content_hash"]
    assert response["ETag"] == body["etag"] != proposal["etag"]

    types = [e.event_type for e in kernel_events(proposal["id"])]
    assert types == ["kernel.proposal.pending", "kernel.proposal.approved", "kernel.proposal.applied"]
    for event in kernel_events(proposal["id"]):
        assert_valid_event(event)
    approved = kernel_events(proposal["id"])[1].envelope["data"]
    assert approved["rbac"] == {
        "actor": admin.subject,
        "actor_kind": "api_key",
        "roles": ["kernel.admin"],
        "required_role": "kernel.admin",
        "allowed": True,
    }
    assert approved["proposal"]["state"] == "approved" and approved["previous_state"] == "pending"
    actions = list(
        AuditRecord.objects.filter(resource_id=proposal["id"]).order_by("id").values_list("action", "before__state", "after__state")
    )
    assert actions == [
        ("kernel.proposal.submit", None, "pending"),
        ("kernel.proposal.approve", "pending", "approved"),
        ("kernel.proposal.apply", "approved", "applied"),
    ]


def test_two_distinct_approvers_are_needed_above_the_band_and_each_counts_once(proposer, admin, admin2):
    proposal = submit(proposer, risk_score=0.7)
    first = act(admin, proposal["id"], "approve")
    assert first.status_code == 200 and first.json()["state"] == "pending"
    assert len(first.json()["approvals"]) == 1
    assert kernel_events(proposal["id"])[-1].event_type == "kernel.proposal.approval_recorded"
    again = act(admin, proposal["id"], "approve")
    assert again.status_code == 409 and again.json()["type"].endswith("already-approved")
    second = act(admin2, proposal["id"], "approve")
    assert second.status_code == 200 and second.json()["state"] == "applied"
    assert [a["approver"] for a in second.json()["approvals"]] == [admin.subject, admin2.subject]


def test_the_proposer_can_never_approve_their_own_proposal():
    both = persona([Role.KERNEL_PROPOSER, Role.KERNEL_ADMIN], name="both")
    proposal = submit(both)
    response = act(both, proposal["id"], "approve")
    assert response.status_code == 403 and response.json()["type"].endswith("separation-of-duties")
    assert Proposal.objects.get(pk=proposal["id"]).state == "pending"


def test_a_stale_if_match_gets_412_and_the_current_one_succeeds(proposer, admin, admin2):
    proposal = submit(proposer, risk_score=0.7)
    act(admin, proposal["id"], "approve")  # bumps the version
    stale = act(admin2, proposal["id"], "approve", HTTP_IF_MATCH=proposal["etag"])
    assert stale.status_code == 412 and stale.json()["type"].endswith("stale-etag")
    current = admin2.client.get(f"/v1/kernel/proposals/{proposal['id']}")["ETag"]
    assert act(admin2, proposal["id"], "approve", HTTP_IF_MATCH=current).status_code == 200


def test_approval_is_bound_to_the_content_hash(proposer, admin):
    proposal = submit(proposer)
    stored = Proposal.objects.get(pk=proposal["id"])
    assert stored.content_hash == services.content_hash_for("sysctl", "", stored.changes)
    act(admin, proposal["id"], "approve")
    assert Proposal.objects.get(pk=proposal["id"]).approvals.get().content_hash == stored.content_hash


def test_invalid_transitions_are_409_naming_the_state(proposer, admin, admin2):
    proposal = submit(proposer)
    act(admin, proposal["id"], "approve")
    response = act(admin2, proposal["id"], "approve")
    assert response.status_code == 409
    assert response.json()["state"] == "applied" and "applied" in response.json()["detail"]


def test_negative_authorisation(proposer, admin, outsider):
    proposal = submit(proposer)
    assert api_client().post(f"/v1/kernel/proposals/{proposal['id']}/approve").status_code == 401
    assert act(proposer, proposal["id"], "approve").status_code == 403
    assert act(outsider, proposal["id"], "approve").status_code == 404


def test_rbac_is_checked_in_the_action_itself_and_denials_are_audited(proposer):
    proposal = Proposal.objects.get(pk=submit(proposer)["id"])
    hook_without_role = Principal(kind="hook", subject="hook:ci", tenant_id="acme", roles=frozenset({"kernel.proposer"}))
    with pytest.raises(NotAllowed) as denied:  # a domain error: the service knows no HTTP
        services.approve_proposal(proposal, hook_without_role, comment="from a webhook")
    assert domain_status(denied.value) == 403 and denied.value.extra["required_role"] == "kernel.admin"
    record = AuditRecord.objects.get(resource_id=str(proposal.pk), result="denied")
    assert record.metadata["rbac"]["required_role"] == "kernel.admin" and record.metadata["rbac"]["allowed"] is False

    hook = Principal(kind="hook", subject="hook:ci", tenant_id="acme", roles=frozenset({"kernel.admin"}))
    approved = services.approve_proposal(proposal, hook, comment="signed webhook")
    assert approved.state == "applied"
    other_tenant_hook = Principal(kind="hook", subject="hook:x", tenant_id="globex", roles=frozenset({"kernel.admin"}))
    with pytest.raises(ProposalNotFound) as hidden:
        services.approve_proposal(proposal, other_tenant_hook)
    assert domain_status(hidden.value) == 404


def test_without_auto_apply_the_final_approval_stops_at_approved_and_apply_is_explicit(proposer, admin, admin2, policy_file):
    policy_file(auto_apply=False)
    proposal = submit(proposer, changes=[change("vm.swappiness", None, 10)])
    approved = act(admin, proposal["id"], "approve").json()
    assert approved["state"] == "approved" and approved["auto_apply"] is False
    assert act(proposer, proposal["id"], "apply").status_code == 403
    applied = act(admin2, proposal["id"], "apply", HTTP_IF_MATCH=approved["etag"])
    assert applied.status_code == 200 and applied.json()["state"] == "applied"
    assert [e.event_type for e in kernel_events(proposal["id"])][-1] == "kernel.proposal.applied"
    assert act(admin2, proposal["id"], "apply").status_code == 409


def test_an_unknown_field_is_a_400_and_nothing_is_approved(proposer, admin):
    proposal = submit(proposer)
    response = act(admin, proposal["id"], "approve", {"coment": "typo"})
    assert response.status_code == 400 and response.json()["errors"] == {"coment": ["Unknown field."]}
    assert Proposal.objects.get(pk=proposal["id"]).state == "pending"
