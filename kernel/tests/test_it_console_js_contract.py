"""The markup contract the Console's JavaScript relies on (static/kernel/kernel.js, static/console/console.js).

No browser runs here (none is installed in CI; a real-browser test of the dialogs and the countdown is left
for the browser suite). Instead this checks, on pages rendered by the real views, everything the scripts
read: the ids and selectors they query, the WebSocket path and polling URL they use (both answered by the
real app), the ISO timestamps the countdown parses, and the dialog each button opens.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import resolve

from aion.roles import Role
from aion.testing.factories import make_user
from aion.testing.kernel_proposals import act, persona, submit
from kernel.models import Proposal
from kernel.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db

KERNEL_JS = finders.find("kernel/kernel.js")
CONSOLE_JS = finders.find("console/console.js")


def login(username: str, roles: list[str]) -> Client:
    client = Client()
    client.force_login(make_user(username, roles))
    return client


def live_attributes(page: str) -> dict[str, str]:
    tag = re.search(r'<div id="kernel-live"[^>]*>', page)
    assert tag, "the live-update anchor kernel.js reads is missing"
    return {name: html.unescape(value) for name, value in re.findall(r'data-([a-z]+)="([^"]*)"', tag.group(0))}


def test_the_scripts_are_collectable_and_every_id_they_query_is_on_the_pages():
    assert KERNEL_JS and CONSOLE_JS
    kernel_js, console_js = open(KERNEL_JS).read(), open(CONSOLE_JS).read()
    assert "confirmForm" in console_js and "showModal" in console_js
    proposal = submit(persona([Role.KERNEL_PROPOSER]))
    viewer = login("viewer", [Role.KERNEL_ADMIN])
    for url in ("/console/proposals/", f"/console/proposals/{proposal['id']}/"):
        page = viewer.get(url).content.decode()
        assert '<script src="/static/kernel/kernel.js"></script>' in page, url
        for element_id in re.findall(r'getElementById\("([^"]+)"\)', kernel_js):
            assert f'id="{element_id}"' in page, (url, element_id)
        assert 'class="countdown" data-expires="' in page, url  # ".countdown[data-expires]"


def test_countdowns_carry_the_iso_expiry_the_script_parses():
    proposal = submit(persona([Role.KERNEL_PROPOSER]), ttl_seconds=600)
    stored = Proposal.objects.get(pk=proposal["id"])
    page = login("viewer", [Role.AUDITOR]).get(f"/console/proposals/{proposal['id']}/").content.decode()
    expires = re.search(r'class="countdown" data-expires="([^"]+)"', page).group(1)
    parsed = datetime.fromisoformat(html.unescape(expires))  # Date.parse accepts the same ISO 8601 form
    assert parsed.tzinfo is not None
    assert abs((parsed - stored.expires_at).total_seconds()) < 1


def test_the_live_anchor_points_at_the_real_socket_and_a_poll_that_changes_with_the_proposal():
    proposer, other_admin = persona([Role.KERNEL_PROPOSER]), persona([Role.KERNEL_ADMIN], name="other")
    proposal = submit(proposer, risk_score=0.7)  # two approvals: one keeps it pending
    viewer = login("viewer", [Role.KERNEL_ADMIN])
    for url, poll_key in (("/console/proposals/", None), (f"/console/proposals/{proposal['id']}/", proposal["id"])):
        live = live_attributes(viewer.get(url).content.decode())
        assert live["ws"].lstrip("/") in {str(p.pattern) for p in websocket_urlpatterns}
        assert live.get("proposal") == poll_key
        answer = viewer.get(live["poll"])
        assert answer.status_code == 200 and answer.json()["fingerprint"] == live["fingerprint"], url
        assert resolve(live["poll"].split("?")[0]).url_name == "changes"
    before = {
        url: live_attributes(viewer.get(url).content.decode()) for url in ("/console/proposals/", f"/console/proposals/{proposal['id']}/")
    }
    act(other_admin, proposal["id"], "approve")
    for url, live in before.items():
        # the fingerprint moved, so an open page polling it reloads
        assert viewer.get(live["poll"]).json()["fingerprint"] != live["fingerprint"], url


def test_each_button_opens_its_own_dialog_with_csrf_etag_and_the_required_reason():
    proposal = submit(persona([Role.KERNEL_PROPOSER]))
    page = login("approver", [Role.KERNEL_ADMIN]).get(f"/console/proposals/{proposal['id']}/").content.decode()
    buttons = re.findall(r'data-action="([a-z_]+)"(?! disabled)[^>]*onclick="return AION\.confirmForm\(\'dialog-([a-z_]+)\'\)"', page)
    assert {"approve", "reject"} <= {action for action, _ in buttons}
    for action, dialog in buttons:
        assert action == dialog
        block = re.search(rf'<dialog id="dialog-{action}">(.*?)</dialog>', page, re.S)
        assert block, action
        form = block.group(1)
        assert f'action="/console/proposals/{proposal["id"]}/{action}"' in form
        assert 'name="csrfmiddlewaretoken"' in form and 'name="etag" value="' in form
        if action in ("reject", "rollback"):
            assert re.search(r'<textarea name="text"[^>]* required', form), action
    assert 'id="kernel-stale"' in page and "hidden" in re.search(r'<p id="kernel-stale"[^>]*>', page).group(0)
