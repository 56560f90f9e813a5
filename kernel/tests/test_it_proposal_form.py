"""The New proposal form (Console) works for a newcomer: scope-aware, keeps input, 1-based lines, policy bounds.

Django's test client against the real views, services and the shipped guardrail policy.
"""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.kernel_proposals import act, persona, submit
from kernel.models import Proposal

pytestmark = pytest.mark.django_db

HTML = {"HTTP_ACCEPT": "text/html"}


def login(username: str, roles: list[str], tenant: str = "acme") -> Client:
    client = Client()
    client.force_login(make_user(username, roles, tenant=tenant))
    return client


def page(response) -> str:
    assert response.status_code == 200, response.content.decode()[:1500]
    return html.unescape(response.content.decode())


def textarea(text: str, name: str) -> str:
    match = re.search(rf'<textarea name="{name}"[^>]*>\n?(.*?)</textarea>', text, re.S)
    assert match, f"no textarea {name}"
    return match.group(1)


def placeholder(response) -> str:
    match = re.search(r'<textarea name="changes"[^>]*placeholder="([^"]*)"', response.content.decode(), re.S)
    assert match, "the changes box has no placeholder"
    return html.unescape(match.group(1))


FORM = {"base_revision": "0", "justification": "Tune the ingest pool", "risk_score": "0.2", "ttl_seconds": "", "target": ""}


def test_every_scopes_placeholder_is_an_example_the_policy_accepts():
    hana = login("hana", [Role.KERNEL_PROPOSER])
    first = page(hana.get("/console/proposals/new/"))
    assert re.search(r'<option value="kernel_module" selected>', first)  # the default scope
    for scope in ("kernel_module", "network", "sysctl"):
        example = placeholder(hana.get(f"/console/proposals/new/?scope={scope}"))
        response = hana.post("/console/proposals/new/", {**FORM, "scope": scope, "changes": example})
        assert response.status_code == 302, (scope, example, response.content.decode()[:3000])
    assert sorted(Proposal.objects.values_list("scope", flat=True)) == ["kernel_module", "network", "sysctl"]


def test_changing_scope_keeps_what_was_typed_and_shows_that_scopes_keys():
    ivan = login("ivan", [Role.KERNEL_PROPOSER])
    typed = {
        **FORM,
        "scope": "network",
        "changes": "mtu = 1500\nfirewall.ssh_open = false",
        "justification": "Jumbo frames soon",
        "refresh": "scope",
    }
    shown = page(ivan.post("/console/proposals/new/", typed))
    assert textarea(shown, "changes") == "mtu = 1500\nfirewall.ssh_open = false"
    assert textarea(shown, "justification") == "Jumbo frames soon"
    assert '<option value="network" selected>' in shown
    assert 'data-key="mtu"' in shown and "integer from 1280 to 9216" in shown and 'data-key="net.core.somaxconn"' not in shown
    assert 'class="errorlist"' not in shown  # a scope change is not a submission
    assert Proposal.objects.count() == 0
    # The scope selector submits this same form (no separate GET form that drops the text).
    assert shown.count("<form") == 2  # the logout form and this one
    assert 'id="scope-refresh" formnovalidate formmethod="post"' in shown


def test_errors_name_the_1_based_line_and_keep_the_input():
    jack = login("jack", [Role.KERNEL_PROPOSER])
    typed = "# raise the backlog\nnet.core.somaxconn 4096\n"
    shown = page(jack.post("/console/proposals/new/", {**FORM, "scope": "sysctl", "changes": typed}))
    assert "Line 2: write key = value." in shown
    typed = "# tune\n\nnet.core.somaxconn = 5\nvm.swappiness = 10\nkernel.panic = 1\n"
    shown = page(jack.post("/console/proposals/new/", {**FORM, "scope": "sysctl", "changes": typed}))
    assert "Line 3 (net.core.somaxconn): must be between 128 and 65535" in shown
    assert "Line 5: 'kernel.panic' is not on the allowlist of scope 'sysctl'." in shown
    assert "changes.0" not in shown and "changes.2" not in shown and "Line 4" not in shown
    assert textarea(shown, "changes") == typed.rstrip("\n") or textarea(shown, "changes") == typed
    assert textarea(shown, "justification") == FORM["justification"]
    assert Proposal.objects.count() == 0


def test_the_risk_label_the_input_bound_and_the_error_agree_with_the_policy(policy_file):
    kate = login("kate", [Role.KERNEL_PROPOSER])
    shown = page(kate.get("/console/proposals/new/?scope=sysctl"))
    assert "Risk score (0 to 0.95)" in shown and re.search(r'name="risk_score"[^>]*max="0.95"', shown)
    for risk in ("0.97", "1.5", "-0.1"):
        refused = page(
            kate.post("/console/proposals/new/", {**FORM, "scope": "sysctl", "changes": "vm.swappiness = 10", "risk_score": risk})
        )
        assert "The risk score must be a number from 0 to 0.95" in refused, risk
        assert "from 0 to 1." not in refused
    assert (
        "from 0 to 0.95"
        in persona([Role.KERNEL_PROPOSER])
        .client.post(
            "/v1/kernel/proposals",
            {"scope": "sysctl", "changes": [{"key": "vm.swappiness", "from": None, "to": 10}], "justification": "x", "risk_score": 0.97},
            format="json",
        )
        .json()["errors"]["risk_score"][0]
    )  # the API says the same
    policy_file(max_risk_score=0.8)
    shown = page(kate.get("/console/proposals/new/?scope=sysctl"))
    assert "Risk score (0 to 0.8)" in shown and re.search(r'name="risk_score"[^>]*max="0.8"', shown)


def test_the_form_offers_the_scopes_allowlisted_keys_with_bounds_and_current_values():
    proposer = persona([Role.KERNEL_PROPOSER], name="p")
    act(persona([Role.KERNEL_ADMIN], name="a"), submit(proposer)["id"], "approve")  # somaxconn = 1024 is now revision 1
    lena = login("lena", [Role.KERNEL_PROPOSER])
    shown = page(lena.get("/console/proposals/new/?scope=sysctl"))
    row = re.search(r'<tr data-key="net.core.somaxconn">(.*?)</tr>', shown, re.S).group(1)
    assert "integer from 128 to 65535" in row and "<td>1024</td>" in row
    assert 'name="base_revision" value="1"' in shown
    modules = page(lena.get("/console/proposals/new/?scope=kernel_module"))
    assert 'data-key="overlay"' in modules and "load or block" in modules
    network = page(lena.get("/console/proposals/new/?scope=network"))
    assert "true or false" in network and "text, at most 200 characters" in network and "allow or deny" in network
    # Another tenant's proposer sees its own (empty) configuration, not acme's.
    outsider = login("mallory", [Role.KERNEL_PROPOSER], tenant=OTHER_TENANT)
    theirs = page(outsider.get("/console/proposals/new/?scope=sysctl"))
    assert 'name="base_revision" value="0"' in theirs and "<td>1024</td>" not in theirs


def test_an_auditor_sees_no_new_proposal_button_and_the_form_says_they_cannot_submit():
    auditor = login("nina", [Role.AUDITOR])
    assert "New proposal" not in page(auditor.get("/console/proposals/"))
    assert "New proposal" in page(login("omar", [Role.KERNEL_PROPOSER]).get("/console/proposals/"))
    assert "New proposal" not in page(login("pia", [Role.KERNEL_ADMIN]).get("/console/proposals/"))
    form = page(auditor.get("/console/proposals/new/?scope=network"))
    assert 'id="read-only-notice"' in form and "You cannot submit proposals." in form and "<code>kernel.proposer</code>" in form
    assert re.search(r'<button type="submit" id="submit-proposal" disabled title="Submitting needs the role kernel.proposer"', form)
    assert 'formmethod="get"' in form  # an auditor can still switch scopes (a read)
    refused = auditor.post("/console/proposals/new/", {**FORM, "scope": "sysctl", "changes": "vm.swappiness = 10"}, **HTML)
    assert refused.status_code == 403 and "This page requires the role 'kernel.proposer'." in html.unescape(refused.content.decode())
    assert Proposal.objects.count() == 0


def test_the_form_refuses_readers_without_a_kernel_role():
    reader = login("quinn", [Role.MEMORY_READER])
    assert reader.get("/console/proposals/new/").status_code == 403
    assert reader.post("/console/proposals/new/", {**FORM, "scope": "sysctl", "changes": "vm.swappiness = 10"}).status_code == 403
    assert Proposal.objects.count() == 0


# --- In a real browser ----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_a_newcomer_fills_the_form_changes_scope_and_fixes_an_error(console_browser):
    from playwright.sync_api import expect

    make_user("rita", [Role.KERNEL_PROPOSER])
    console_browser.login("rita")
    page = console_browser.page
    console_browser.goto("/console/proposals/")
    page.get_by_role("link", name="New proposal").click()
    changes = page.get_by_label("Changes, one per line: key = value")
    expect(page.get_by_label("Scope")).to_have_value("kernel_module")
    expect(changes).to_have_attribute("placeholder", re.compile(r"^br_netfilter = (load|block)"))
    expect(page.get_by_text("Risk score (0 to 0.95)")).to_be_visible()
    changes.fill("net.core.somaxconn = 5\nvm.swappiness = 10")
    page.get_by_label("Justification").fill("Raise the accept backlog")
    page.get_by_label("Scope").select_option("sysctl")  # re-renders for sysctl, keeping what was typed
    expect(page.locator("#allowed-keys")).to_contain_text("integer from 128 to 65535")
    expect(page.get_by_label("Scope")).to_have_value("sysctl")
    expect(changes).to_have_value("net.core.somaxconn = 5\nvm.swappiness = 10")
    expect(page.get_by_label("Justification")).to_have_value("Raise the accept backlog")
    page.get_by_role("button", name="Submit proposal").click()
    expect(page.locator("#id_changes_errors")).to_have_text("Line 1 (net.core.somaxconn): must be between 128 and 65535")
    expect(changes).to_have_value("net.core.somaxconn = 5\nvm.swappiness = 10")
    changes.fill("net.core.somaxconn = 4096\nvm.swappiness = 10")
    page.get_by_role("button", name="Submit proposal").click()
    expect(page.get_by_text("Proposal submitted; it now waits for approval.")).to_be_visible()
    assert Proposal.objects.get().changes == [
        {"key": "net.core.somaxconn", "from": None, "to": 4096},
        {"key": "vm.swappiness", "from": None, "to": 10},
    ]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_an_auditor_has_no_button_and_the_form_says_they_cannot_submit(console_browser):
    from playwright.sync_api import expect

    make_user("sven", [Role.AUDITOR])
    console_browser.login("sven")
    page = console_browser.page
    console_browser.goto("/console/proposals/")
    expect(page.get_by_role("heading", name="Kernel proposals")).to_be_visible()
    expect(page.get_by_role("link", name="New proposal")).to_have_count(0)
    console_browser.goto("/console/proposals/new/")
    expect(page.locator("#read-only-notice")).to_contain_text("You cannot submit proposals.")
    expect(page.get_by_role("button", name="Submit proposal")).to_be_disabled()
    page.get_by_label("Scope").select_option("network")  # switching scopes is a read: still allowed
    expect(page.locator("#allowed-keys")).to_contain_text("allow or deny")
