"""Concurrency on PostgreSQL with real threads: 20 simultaneous approvals, and two applies on one scope."""

from __future__ import annotations

import pytest

from aion.roles import Role
from aion.testing.concurrency import run_together
from aion.testing.kernel_proposals import act, change, kernel_events, persona, submit
from kernel.models import Approval, ConfigRevision, Proposal

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_concurrent_approvals_give_exactly_the_required_approvals_and_one_transition(require_postgres, proposer):
    proposal = submit(proposer, risk_score=0.7)  # needs 2 approvals
    admins = [persona([Role.KERNEL_ADMIN], name=f"admin-{i}") for i in range(20)]
    responses = run_together([lambda a=a: act(a, proposal["id"], "approve") for a in admins])
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 2 and codes.count(409) == 18, codes
    stored = Proposal.objects.get(pk=proposal["id"])
    assert stored.state == "applied" and Approval.objects.filter(proposal=stored).count() == 2
    types = [e.event_type for e in kernel_events(proposal["id"])]
    assert types.count("kernel.proposal.approved") == 1 and types.count("kernel.proposal.applied") == 1
    assert ConfigRevision.objects.filter(scope="sysctl").count() == 1


def test_twenty_concurrent_approvals_by_one_approver_count_once(require_postgres, proposer, admin):
    proposal = submit(proposer, risk_score=0.7)
    responses = run_together([lambda: act(admin, proposal["id"], "approve") for _ in range(20)])
    assert sorted(r.status_code for r in responses).count(200) == 1
    assert Approval.objects.filter(proposal_id=proposal["id"]).count() == 1
    assert Proposal.objects.get(pk=proposal["id"]).state == "pending"


def test_two_concurrent_applies_on_one_scope_serialise_and_the_second_is_drift_checked(require_postgres, proposer, admin, policy_file):
    policy_file(auto_apply=False)
    same_key = [submit(proposer, changes=[change(to=to)]) for to in (1024, 2048)]
    other_key = submit(proposer, changes=[change("vm.swappiness", None, 10)])
    for proposal in [*same_key, other_key]:
        act(admin, proposal["id"], "approve")

    responses = run_together([lambda p=p: act(admin, p["id"], "apply") for p in same_key])
    assert sorted(r.status_code for r in responses) == [200, 409]
    states = sorted(Proposal.objects.filter(pk__in=[p["id"] for p in same_key]).values_list("state", flat=True))
    assert states == ["applied", "failed"]
    failed = Proposal.objects.get(pk__in=[p["id"] for p in same_key], state="failed")
    assert failed.drifted_keys[0]["key"] == "net.core.somaxconn"
    assert ConfigRevision.objects.filter(scope="sysctl").count() == 1

    # a non-conflicting apply racing nothing lands on top of the winner as revision 2
    assert act(admin, other_key["id"], "apply").status_code == 200
    assert ConfigRevision.objects.filter(scope="sysctl").order_by("-number").first().number == 2


def test_concurrent_applies_of_different_keys_both_land_in_order(require_postgres, proposer, admin, policy_file):
    policy_file(auto_apply=False)
    proposals = [
        submit(proposer, changes=[change(key, None, value)]) for key, value in (("vm.swappiness", 10), ("net.core.somaxconn", 512))
    ]
    for proposal in proposals:
        act(admin, proposal["id"], "approve")
    responses = run_together([lambda p=p: act(admin, p["id"], "apply") for p in proposals])
    assert [r.status_code for r in responses] == [200, 200]
    numbers = sorted(ConfigRevision.objects.filter(scope="sysctl").values_list("number", flat=True))
    assert numbers == [1, 2]
    assert ConfigRevision.objects.get(number=2).document == {"vm.swappiness": 10, "net.core.somaxconn": 512}
