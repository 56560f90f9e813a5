"""The Console's proposals list and a scope's revisions as django-tables2 tables over the API's FilterSet (issue 16 §2).

Personas: an auditor (reads), a kernel admin, an outsider of another tenant; proposals come from API keys.
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


def test_the_list_filters_like_the_api_sorts_and_pages():
    proposer = persona([Role.KERNEL_PROPOSER])
    low = submit(proposer, changes=[change("vm.swappiness", to=10)], risk_score=0.1)
    high = submit(proposer, risk_score=0.7)
    viewer = login("dave", [Role.AUDITOR])

    page = viewer.get("/console/proposals/").content.decode()
    assert row_ids(page) == [high["id"], low["id"]]  # newest first by default
    assert 'aria-sort="descending"' in page and "?sort=" in page
    by_risk = viewer.get("/console/proposals/?sort=risk_score").content.decode()
    assert row_ids(by_risk) == [low["id"], high["id"]]
    by_risk_desc = viewer.get("/console/proposals/?sort=-risk_score").content.decode()
    assert row_ids(by_risk_desc) == [high["id"], low["id"]]
    assert row_ids(viewer.get(f"/console/proposals/?proposer={proposer.subject}&state=pending").content.decode()) == [
        high["id"],
        low["id"],
    ]
    assert row_ids(viewer.get("/console/proposals/?proposer=someone-else").content.decode()) == []
    approvals = viewer.get("/console/proposals/?sort=approvals").status_code
    assert approvals == 200


def test_an_invalid_filter_shows_its_error_and_no_rows_never_a_500():
    submit(persona([Role.KERNEL_PROPOSER]))
    viewer = login("dave", [Role.AUDITOR])
    response = viewer.get("/console/proposals/?state=bogus&created_after=yesterday")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="filter-errors"' in page and "state:" in page and "created_after:" in page
    assert row_ids(page) == [] and "No proposals match." in page
    assert viewer.get("/console/proposals/?sort=nonsense&page=99").status_code in (200, 404)


def test_the_list_pages_fifty_rows():
    proposer = persona([Role.KERNEL_PROPOSER])
    for n in range(51):
        submit(proposer, changes=[change("net.core.somaxconn", to=1024 + n)])
    viewer = login("dave", [Role.AUDITOR])
    first = viewer.get("/console/proposals/").content.decode()
    assert len(row_ids(first)) == 50 and "Page 1 of 2" in first and 'aria-label="Pages"' in first
    assert len(row_ids(viewer.get("/console/proposals/?page=2").content.decode())) == 1


def test_the_list_is_closed_to_outsiders_rows_and_to_people_without_a_kernel_role():
    submit(persona([Role.KERNEL_PROPOSER]))
    outsider = login("eve", [Role.KERNEL_ADMIN], tenant=OTHER_TENANT)
    assert row_ids(outsider.get("/console/proposals/").content.decode()) == []
    assert login("mo", [Role.MEMORY_READER]).get("/console/proposals/").status_code == 403
    assert Client().get("/console/proposals/").status_code == 302  # to the login page


def test_the_scope_revisions_table_offers_rollback_of_the_head_only_to_admins():
    proposer = persona([Role.KERNEL_PROPOSER])
    api_admin = persona([Role.KERNEL_ADMIN], name="admin")
    first = submit(proposer)
    act(api_admin, first["id"], "approve")
    second = submit(proposer, changes=[change("vm.swappiness", to=10)])
    act(api_admin, second["id"], "approve")
    admin = login("ada", [Role.KERNEL_ADMIN])
    page = admin.get("/console/proposals/config/sysctl/").content.decode()
    assert [int(n) for n in re.findall(r'data-revision="(\d+)"', page)] == [2, 1]
    assert re.findall(r'data-rollback="(\d+)"', page) == ["2"]  # revision 1 has a later one on top
    assert f"/console/proposals/{second['id']}/rollback/" in page
    auditor = login("carol", [Role.AUDITOR]).get("/console/proposals/config/sysctl/").content.decode()
    assert "data-rollback=" not in auditor
    ascending = admin.get("/console/proposals/config/sysctl/?sort=number").content.decode()
    assert [int(n) for n in re.findall(r'data-revision="(\d+)"', ascending)] == [1, 2]


def test_the_compare_form_refuses_an_unknown_revision_without_a_500():
    proposer = persona([Role.KERNEL_PROPOSER])
    act(persona([Role.KERNEL_ADMIN], name="admin"), submit(proposer)["id"], "approve")
    admin = login("ada", [Role.KERNEL_ADMIN])
    valid = admin.get("/console/proposals/config/sysctl/?a=0&b=1").content.decode()
    assert 'data-status="added"' in valid and "compare-errors" not in valid
    invalid = admin.get("/console/proposals/config/sysctl/?a=7&b=x")
    assert invalid.status_code == 200 and 'id="compare-errors"' in invalid.content.decode()
