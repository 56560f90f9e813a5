"""The "Awaiting my approval" inbox (kernel.selectors.awaiting_approval) and its Console page (issue 16 §2).

Personas: two kernel admins (ada, bob), an auditor, an outsider kernel admin of another tenant.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.kernel_proposals import act, change, persona, submit

pytestmark = pytest.mark.django_db


def login(username: str, roles: list[str], tenant: str = "acme") -> Client:
    make_user(username, roles, tenant=tenant)
    client = Client()
    assert client.login(username=username, password="pw-for-tests-only")
    return client


def row_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-id="([0-9a-f-]+)"', page)


def test_the_inbox_lists_what_i_may_approve_and_drops_what_i_approved():
    proposer = persona([Role.KERNEL_PROPOSER])
    two = submit(proposer, risk_score=0.7)  # needs two approvals
    one = submit(proposer, changes=[change("vm.swappiness", to=10)])
    applied = submit(proposer, changes=[change("vm.max_map_count", to=262144)])
    act(persona([Role.KERNEL_ADMIN], name="other"), applied["id"], "approve")
    ada = login("ada", [Role.KERNEL_ADMIN])
    page = ada.get("/console/proposals/inbox/").content.decode()
    assert sorted(row_ids(page)) == sorted([two["id"], one["id"]])
    assert ada.post(f"/console/proposals/{two['id']}/approve", {"etag": "", "text": ""}).status_code == 302
    page = ada.get("/console/proposals/inbox/").content.decode()
    assert row_ids(page) == [one["id"]]  # approved by me: no longer mine to approve
    listing = ada.get("/console/proposals/").content.decode()
    assert "Awaiting my approval (1)" in listing


def test_my_own_proposal_never_awaits_me():
    mine = login("pat", [Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER])
    response = mine.post(
        "/console/proposals/new/",
        {"scope": "sysctl", "base_revision": "0", "changes": "vm.swappiness = 10", "justification": "tune", "risk_score": "0.2"},
    )
    assert response.status_code == 302
    page = mine.get("/console/proposals/inbox/").content.decode()
    assert row_ids(page) == [] and "Nothing awaits your approval." in page


def test_the_inbox_is_for_kernel_admins_of_the_tenant_only():
    submit(persona([Role.KERNEL_PROPOSER]))
    auditor = login("carol", [Role.AUDITOR]).get("/console/proposals/inbox/")  # reads everything, approves nothing
    assert auditor.status_code == 200 and "Only kernel admins approve; nothing awaits you." in auditor.content.decode()
    assert login("mo", [Role.MEMORY_READER]).get("/console/proposals/inbox/").status_code == 403
    outsider = login("eve", [Role.KERNEL_ADMIN], tenant=OTHER_TENANT)
    assert row_ids(outsider.get("/console/proposals/inbox/").content.decode()) == []
    assert Client().get("/console/proposals/inbox/").status_code == 302
