"""A revision's rollout (hosts converged / targeted) on GET /v1/kernel/config/{scope}/revisions/{n} and on the proposal;
rollback completion is every targeted host converged on the rollback revision."""

from __future__ import annotations

import pytest

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, api_client
from aion.testing.kernel_proposals import act, change, persona
from kernel.tests.hosts_support import agent, applied, post_report, report_body, scope_report

pytestmark = pytest.mark.django_db

DOC = {"net.core.somaxconn": 1024}


def rollout(client, number):
    response = client.get(f"/v1/kernel/config/sysctl/revisions/{number}")
    assert response.status_code == 200, response.json()
    return response.json()["rollout"]


def test_a_revisions_rollout_counts_the_hosts_it_targets(proposer, admin):
    applied(proposer, admin)
    gpu = agent(pool="gpu")
    post_report(gpu, "gpu-1", report_body(sysctl=scope_report(1, DOC)))
    post_report(gpu, "gpu-2", report_body(sysctl=scope_report(0, {})))
    post_report(agent(host="other-1", name="no sysctl"), "other-1", report_body())  # serves no sysctl: not targeted
    first = rollout(admin.client, 1)
    assert first["targeted"] == 2 and first["converged"] == 1 and first["ratio"] == 0.5 and not first["complete"]
    assert first["states"]["pending"] == 1 and first["states"]["converged"] == 1
    assert {h["name"]: h["converged"] for h in first["hosts"]} == {"gpu-1": True, "gpu-2": False}
    post_report(gpu, "gpu-2", report_body(sysctl=scope_report(1, DOC)))
    assert rollout(admin.client, 1)["complete"] is True


def test_a_pools_revision_targets_only_that_pool(proposer, admin):
    applied(proposer, admin)
    applied(proposer, admin, target="gpu", changes=[change("vm.swappiness", None, 10)])
    post_report(agent(pool="gpu"), "gpu-1", report_body("gpu", sysctl=scope_report(1, DOC)))
    post_report(agent(pool="cpu", name="cpu"), "cpu-1", report_body("cpu", sysctl=scope_report(1, DOC)))
    second = rollout(admin.client, 2)
    assert second["target"] == "gpu" and second["targeted"] == 1 and second["converged"] == 0
    assert rollout(admin.client, 1)["converged"] == 1  # cpu-1 is on 1; gpu-1 on 1 too but its pool wants 2


def test_rollback_completion_on_the_proposal(proposer, admin):
    proposal = applied(proposer, admin)
    node = agent(host="gpu-1")
    post_report(node, "gpu-1", report_body(sysctl=scope_report(1, DOC)))
    detail = admin.client.get(f"/v1/kernel/proposals/{proposal['id']}").json()
    assert detail["rollout"]["revision"] == 1 and detail["rollout"]["complete"] and detail["rollout"]["rollback_complete"] is None
    act(admin, proposal["id"], "rollback", {"reason": "the backlog change hurt latency"})
    detail = admin.client.get(f"/v1/kernel/proposals/{proposal['id']}").json()
    assert detail["rollout"]["revision"] == 2 and detail["rollout"]["kind"] == "rollback"
    assert detail["rollout"]["rollback_complete"] is False and detail["rollout"]["states"]["pending"] == 1
    post_report(node, "gpu-1", report_body(sysctl=scope_report(2, {})))
    detail = admin.client.get(f"/v1/kernel/proposals/{proposal['id']}").json()
    assert detail["rollout"]["rollback_complete"] is True and detail["rollout"]["ratio"] == 1.0


def test_a_pending_proposal_has_no_rollout(proposer, admin):
    from aion.testing.kernel_proposals import submit

    proposal = submit(proposer)
    assert admin.client.get(f"/v1/kernel/proposals/{proposal['id']}").json()["rollout"] is None


def test_negative_authorisation(proposer, admin):
    applied(proposer, admin)
    assert persona([Role.AUDITOR], name="auditor").client.get("/v1/kernel/config/sysctl/revisions/1").status_code == 200
    assert persona([Role.MEMORY_READER], name="teammate").client.get("/v1/kernel/config/sysctl/revisions/1").status_code == 403
    outsider = persona([Role.KERNEL_ADMIN], tenant=OTHER_TENANT, name="outsider")
    assert outsider.client.get("/v1/kernel/config/sysctl/revisions/1").status_code == 404
    assert api_client().get("/v1/kernel/config/sysctl/revisions/1").status_code == 401
