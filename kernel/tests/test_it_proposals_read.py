"""GET /v1/kernel/proposals and /v1/kernel/proposals/{id}: filters, pagination, diff, approvals and history."""

from __future__ import annotations

import pytest

from aion.roles import Role
from aion.testing.factories import api_client
from aion.testing.kernel_proposals import act, change, persona, submit

pytestmark = pytest.mark.django_db


def test_list_filters_by_state_scope_proposer_and_created_time(proposer, admin):
    other = persona([Role.KERNEL_PROPOSER], name="other proposer")
    applied = submit(proposer)
    act(admin, applied["id"], "approve")
    pending = submit(other, changes=[change("vm.swappiness", None, 10)])
    network = submit(proposer, scope="network", changes=[change("mtu", None, 9000)])

    def ids(query: str) -> set[str]:
        response = admin.client.get("/v1/kernel/proposals" + query)
        assert response.status_code == 200, response.json()
        return {p["id"] for p in response.json()["results"]}

    assert ids("") == {applied["id"], pending["id"], network["id"]}
    assert ids("?state=applied") == {applied["id"]}
    assert ids("?state=pending&state=applied") == {applied["id"], pending["id"], network["id"]}
    assert ids("?scope=network") == {network["id"]}
    assert ids(f"?proposer={other.subject}") == {pending["id"]}
    assert ids(f"?created_after={applied['created_at'].replace('+', '%2B')}") == {applied["id"], pending["id"], network["id"]}
    assert ids("?created_before=2000-01-01T00:00:00Z") == set()
    page = admin.client.get("/v1/kernel/proposals?limit=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert admin.client.get("/v1/kernel/proposals?state=bogus").status_code == 400


def test_detail_has_the_diff_the_approvals_and_the_history(proposer, admin, admin2):
    first = submit(proposer)
    act(admin, first["id"], "approve")
    proposal = submit(proposer, risk_score=0.6, changes=[change(frm=1024, to=2048), change("vm.swappiness", None, 10)])
    act(admin, proposal["id"], "approve", {"comment": "ok by me"})
    response = admin2.client.get(f"/v1/kernel/proposals/{proposal['id']}")
    assert response.status_code == 200
    body = response.json()
    assert response["ETag"] == body["etag"]
    assert body["diff"] == [
        {"key": "net.core.somaxconn", "current": 1024, "from": 1024, "to": 2048, "drifted": False},
        {"key": "vm.swappiness", "current": None, "from": None, "to": 10, "drifted": False},
    ]
    assert [a["comment"] for a in body["approvals"]] == ["ok by me"]
    assert [h["action"] for h in body["history"]] == ["kernel.proposal.submit", "kernel.proposal.approve"]
    assert body["history"][1]["metadata"]["rbac"]["actor"] == admin.subject


def test_any_kernel_role_or_auditor_reads_and_others_do_not(proposer, outsider):
    proposal = submit(proposer)
    for roles in ([Role.KERNEL_ADMIN], [Role.KERNEL_BREAKGLASS], [Role.AUDITOR]):
        assert persona(roles).client.get(f"/v1/kernel/proposals/{proposal['id']}").status_code == 200
    assert persona([Role.MEMORY_READER]).client.get("/v1/kernel/proposals").status_code == 403
    assert api_client().get("/v1/kernel/proposals").status_code == 401
    assert outsider.client.get(f"/v1/kernel/proposals/{proposal['id']}").status_code == 404
    assert proposer.client.get("/v1/kernel/proposals/not-a-uuid").status_code == 404
