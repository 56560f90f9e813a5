"""The diff per state and multi-approval feedback (issue 16 §1.1, §1.2) with Django's test client and the API: the cheap
checks beside the browser tests in test_it_console_browser.py."""

from __future__ import annotations

import html
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


def etag_of(page: str) -> str:
    return html.unescape(re.search(r'name="etag" value="([^"]+)"', page).group(1))


def test_the_api_diff_marks_drift_only_while_the_proposal_is_open(proposer, admin):
    applied = submit(proposer, changes=[change(frm=None, to=4096)])
    stale = submit(proposer, changes=[change(frm=None, to=2048)])  # also proposed from "absent"; revision 1 overtakes it
    assert act(admin, applied["id"], "approve").status_code == 200

    def diff(proposal):
        return admin.client.get(f"/v1/kernel/proposals/{proposal['id']}").json()["diff"]

    assert diff(applied) == [{"key": "net.core.somaxconn", "current": 4096, "from": None, "to": 4096, "drifted": False}]
    assert diff(stale) == [{"key": "net.core.somaxconn", "current": 4096, "from": None, "to": 2048, "drifted": True}]
    assert act(admin, applied["id"], "rollback", {"reason": "undo"}).status_code == 200
    assert diff(applied)[0] == {"key": "net.core.somaxconn", "current": None, "from": None, "to": 4096, "drifted": False}
    assert diff(stale)[0]["drifted"] is False  # the rollback restored its 'from'


def test_the_first_of_two_approvals_is_reported_and_approve_is_disabled_for_that_admin():
    ada = login("ada", [Role.KERNEL_ADMIN])
    bob = login("bob", [Role.KERNEL_ADMIN])
    proposal = submit(persona([Role.KERNEL_PROPOSER], name="p"), risk_score=0.6)
    detail = f"/console/proposals/{proposal['id']}/"

    done = ada.post(f"{detail}approve", {"etag": etag_of(ada.get(detail).content.decode()), "text": ""}, follow=True)
    page = done.content.decode()
    assert "Approved (1 of 2); waiting for one more admin." in page and "now pending" not in page
    assert re.search(
        r'data-action="approve" disabled title="You have approved this already \(1 of 2\)[^"]*" aria-describedby="why-approve"', page
    )
    assert 'id="why-approve"' in page and '<dialog id="dialog-approve">' not in page
    assert "approval 1 of 2 recorded; still pending" in page and "→ pending</td>" not in page.split("kernel.proposal.approve", 1)[1]

    other = bob.get(detail).content.decode()
    assert 'data-action="approve" disabled' not in other
    second = bob.post(f"{detail}approve", {"etag": etag_of(other), "text": ""}, follow=True).content.decode()
    assert "Done: the proposal is now applied as revision 1 of sysctl." in second


def test_an_outsider_gets_404_and_an_auditor_no_buttons():
    proposal = submit(persona([Role.KERNEL_PROPOSER], name="p"))
    detail = f"/console/proposals/{proposal['id']}/"
    eve = login("eve", [Role.KERNEL_ADMIN], tenant=OTHER_TENANT)
    assert eve.get(detail).status_code == 404
    assert eve.post(f"{detail}approve", {"text": ""}).status_code == 404
    carol = login("carol", [Role.AUDITOR])
    page = carol.get(detail).content.decode()
    assert "net.core.somaxconn" in page and 'id="actions"' not in page
    assert carol.post(f"{detail}approve", {"text": ""}).status_code == 403
