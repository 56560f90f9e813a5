"""The Console's action forms (kernel.forms.ProposalActionForm): dialogs that restate the change and the consequence,
rollback with a preview from the proposal and from the scope page, and refusals shown on the page (issue 16 §2).

Personas: two kernel admins (ada, bob), an auditor (carol), an outsider kernel admin (eve); proposals by API key.
"""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.kernel_proposals import act, change, persona, submit
from kernel.models import Proposal

pytestmark = pytest.mark.django_db


def login(username: str, roles: list[str], tenant: str = "acme") -> Client:
    make_user(username, roles, tenant=tenant)
    client = Client()
    assert client.login(username=username, password="pw-for-tests-only")
    return client


def etag_of(page: str) -> str:
    return html.unescape(re.search(r'name="etag" value="([^"]+)"', page).group(1))


def dialog(page: str, action: str) -> str:
    match = re.search(rf'<dialog id="dialog-{action}">(.*?)</dialog>', page, re.S)
    assert match, f"no {action} dialog"
    return match.group(1)


def test_the_approve_dialog_restates_the_change_and_says_it_applies_now():
    proposal = submit(persona([Role.KERNEL_PROPOSER]), changes=[change("net.core.somaxconn", to=4096)], target="pool-a")
    page = login("ada", [Role.KERNEL_ADMIN]).get(f"/console/proposals/{proposal['id']}/").content.decode()
    text = dialog(page, "approve")
    assert "net.core.somaxconn" in text and "(absent)" in text and "4096" in text
    assert "pool-a" in text and "risk 0.20" in text
    assert "This approval applies it now as revision 1 of sysctl." in text


def test_the_first_of_two_approvals_says_it_waits_for_one_more_admin():
    proposal = submit(persona([Role.KERNEL_PROPOSER]), risk_score=0.7)
    page = login("ada", [Role.KERNEL_ADMIN]).get(f"/console/proposals/{proposal['id']}/").content.decode()
    assert "This is approval 1 of 2; it then waits for one more admin." in dialog(page, "approve")


def test_rollback_from_the_proposal_previews_the_resulting_document_then_rolls_back():
    proposer = persona([Role.KERNEL_PROPOSER])
    first = submit(proposer, changes=[change("vm.swappiness", to=10)])
    act(persona([Role.KERNEL_ADMIN], name="other"), first["id"], "approve")
    second = submit(proposer, changes=[change("vm.swappiness", frm=10, to=30)])
    ada = login("ada", [Role.KERNEL_ADMIN])
    assert ada.post(f"/console/proposals/{second['id']}/approve", {"text": ""}).status_code == 302
    page = ada.get(f"/console/proposals/{second['id']}/").content.decode()
    preview = dialog(page, "rollback")
    assert "Rolling back writes revision 3 of sysctl" in preview
    assert "The result is revision 3 of sysctl, with the document of revision 1." in preview
    assert re.search(
        r'data-status="changed"><td><code>vm.swappiness</code></td>\s*<td class="diff-old">30</td><td class="diff-new">10</td>', preview
    )

    refused = ada.post(f"/console/proposals/{second['id']}/rollback", {"etag": etag_of(page), "text": ""}, follow=True)
    assert "A reason is required to roll back." in refused.content.decode()  # the service's rule, on the page
    assert Proposal.objects.get(pk=second["id"]).state == "applied"
    done = ada.post(f"/console/proposals/{second['id']}/rollback", {"etag": etag_of(page), "text": "p99"}, follow=True)
    assert "rolled back as revision 3 of sysctl" in done.content.decode()


def test_rollback_from_the_scope_page_shows_the_preview_and_refuses_a_superseded_revision():
    proposer = persona([Role.KERNEL_PROPOSER])
    api_admin = persona([Role.KERNEL_ADMIN], name="other")
    first = submit(proposer, changes=[change("vm.swappiness", to=10)])
    act(api_admin, first["id"], "approve")
    ada = login("ada", [Role.KERNEL_ADMIN])
    page = ada.get(f"/console/proposals/{first['id']}/rollback/").content.decode()
    assert "Preview of the resulting document" in page and "with the document of revision 0 (empty: no keys set)" in page
    assert 'data-status="removed"' in page and "Roll back to revision 0" in page
    second = submit(proposer, changes=[change("vm.max_map_count", to=262144)])
    act(api_admin, second["id"], "approve")
    blocked = html.unescape(ada.get(f"/console/proposals/{first['id']}/rollback/").content.decode())
    assert "Revision 2 of 'sysctl' was applied after this proposal; roll that back first." in blocked
    assert 'name="text"' not in blocked
    posted = ada.post(f"/console/proposals/{first['id']}/rollback", {"etag": etag_of(page), "text": "p99"}, follow=True)
    assert "changed while you were looking" in posted.content.decode() or "roll that back first" in posted.content.decode()


def test_the_rollback_page_and_actions_are_closed_to_auditors_and_outsiders():
    proposal = submit(persona([Role.KERNEL_PROPOSER]))
    act(persona([Role.KERNEL_ADMIN], name="other"), proposal["id"], "approve")
    carol = login("carol", [Role.AUDITOR])
    readonly = carol.get(f"/console/proposals/{proposal['id']}/rollback/").content.decode()
    assert 'id="rollback-readonly"' in readonly and 'name="text"' not in readonly
    assert login("mo", [Role.MEMORY_READER]).get(f"/console/proposals/{proposal['id']}/rollback/").status_code == 403
    assert carol.post(f"/console/proposals/{proposal['id']}/rollback", {"text": "x"}).status_code == 403
    eve = login("eve", [Role.KERNEL_ADMIN], tenant=OTHER_TENANT)
    assert eve.get(f"/console/proposals/{proposal['id']}/rollback/").status_code == 404
    assert eve.post(f"/console/proposals/{proposal['id']}/rollback", {"text": "x"}).status_code == 404
    assert Proposal.objects.get(pk=proposal["id"]).state == "applied"


def test_an_invalid_action_form_is_refused_with_its_error_and_nothing_happens():
    proposal = submit(persona([Role.KERNEL_PROPOSER]))
    ada = login("ada", [Role.KERNEL_ADMIN])
    response = ada.post(f"/console/proposals/{proposal['id']}/approve", {"etag": "x" * 300, "text": ""}, follow=True)
    assert "The action&#x27;s form is invalid." in response.content.decode() and "etag:" in response.content.decode()
    assert Proposal.objects.get(pk=proposal["id"]).state == "pending"
    assert ada.post(f"/console/proposals/{proposal['id']}/nonsense", {}).status_code == 404
    assert ada.get("/console/proposals/changes.json?proposal=not-a-uuid").status_code == 404
