"""The kernel Console in a real browser (aion.testing.browser), as two admins would use it (issue 16 §2, §3).

Personas: ada (kernel proposer and admin), bob and carl (kernel admins). axe-core checks every page these tests
visit (the console_browser fixture); the dialogs are also checked open. With AION_SCREENSHOTS=1 they write the
pictures of docs/console.md (docs/console/*.png).
"""

from __future__ import annotations

import pytest

from aion.roles import Role
from aion.testing.browser import PASSWORD, playwright_api
from aion.testing.factories import make_user
from kernel.models import Proposal

expect = playwright_api().expect
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture()
def admins() -> None:
    make_user("ada", [Role.KERNEL_PROPOSER, Role.KERNEL_ADMIN])
    make_user("bob", [Role.KERNEL_ADMIN, Role.HOOKS_ADMIN, Role.MEMORY_READER, Role.MODULES_ADMIN])
    make_user("carl", [Role.KERNEL_ADMIN])


def submit_in_form(page, changes: str, risk: str) -> str:
    page.get_by_role("link", name="New proposal").click()
    page.get_by_label("Scope").select_option("sysctl")
    page.get_by_label("Changes, one per line: key = value").fill(changes)
    page.get_by_label("Justification").fill("Raise the accept backlog for the ingest pool")
    page.get_by_label("Risk score (0 to 0.95)").fill(risk)
    page.get_by_role("button", name="Submit proposal").click()
    expect(page.get_by_text("Proposal submitted; it now waits for approval.")).to_be_visible()
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def test_login_refuses_a_wrong_password_then_lands_on_the_dashboard_and_axe_catches_bad_contrast(console_browser, admins):
    page = console_browser.page
    console_browser.goto("/console/login/")
    console_browser.screenshot("login")
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Your username and password didn't match.")).to_be_visible()
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("#awaiting")).to_contain_text("Nothing awaits your approval.")
    expect(page.locator("#rollbacks-chart")).to_be_visible()
    console_browser.screenshot("dashboard")

    # The fixture's check is real: a page with light grey on white fails it (then the test forgets that page).
    page.set_content('<html lang="en"><title>t</title><main><p style="color:#ccc;background:#fff">faint</p></main></html>')
    found = console_browser.check_accessibility()
    assert any("color-contrast" in line for line in found), found
    console_browser.accessibility.clear()
    console_browser.goto("/console/")


def test_a_proposals_life_submit_approve_by_a_second_admin_apply_and_roll_back_from_the_scope(console_browser, admins):
    ada = console_browser
    ada.login("ada")
    ada.goto("/console/proposals/")
    proposal_id = submit_in_form(ada.page, "net.core.somaxconn = 4096", "0.2")
    approve = ada.page.locator('#actions button[data-action="approve"]')
    expect(approve).to_be_disabled()  # self-approval refused, with the reason
    expect(approve).to_have_attribute("title", "You proposed this; separation of duties needs someone else.")
    ada.goto("/console/proposals/new/")
    ada.screenshot("proposal-new")

    bob = console_browser.new_session()
    bob.login("bob")
    expect(bob.page.locator("#awaiting")).to_contain_text(proposal_id[:8])
    bob.page.get_by_role("link", name="All 1 awaiting my approval →").click()
    expect(bob.page.get_by_role("heading", name="Awaiting my approval")).to_be_visible()
    bob.screenshot("inbox")
    bob.page.get_by_role("link", name=proposal_id[:8]).click()
    bob.page.locator('#actions button[data-action="approve"]').click()
    dialog = bob.page.locator("#dialog-approve")
    expect(dialog).to_contain_text("net.core.somaxconn")
    expect(dialog).to_contain_text("This approval applies it now as revision 1 of sysctl.")
    bob.check_accessibility()
    bob.screenshot("proposal-approve-dialog")
    dialog.locator("textarea").fill("looks right")
    with bob.page.expect_navigation():
        dialog.get_by_role("button", name="Approve").click()
    expect(bob.page.locator("ul.messages")).to_contain_text("applied as revision 1 of sysctl")

    ada.goto(f"/console/proposals/{proposal_id}/")
    expect(ada.page.locator("#proposal-state")).to_have_text("Applied")
    ada.screenshot("proposal-applied")

    bob.goto("/console/proposals/config/sysctl/")
    bob.screenshot("config-scope")
    bob.page.locator('a[data-rollback="1"]').click()
    expect(bob.page.locator("#rollback-preview")).to_contain_text("with the document of revision 0 (empty: no keys set)")
    bob.screenshot("rollback-preview")
    bob.page.get_by_label("Reason (required)").fill("p99 regression")
    bob.page.get_by_role("button", name="Roll back to revision 0").click()
    expect(bob.page.locator("ul.messages")).to_contain_text("rolled back as revision 2 of sysctl")
    assert Proposal.objects.get(pk=proposal_id).state == "rolled_back"
    ada.goto("/console/proposals/")
    expect(ada.page.locator(f'#proposals tr[data-id="{proposal_id}"]')).to_have_attribute("data-state", "rolled_back")
    ada.screenshot("proposals")


def test_a_stale_tab_is_flagged_live_and_its_approval_refused_while_the_other_admin_finished(console_browser, admins):
    bob = console_browser
    make_user("pia", [Role.KERNEL_PROPOSER])
    proposer = bob.new_session()
    proposer.login("pia")
    proposer.goto("/console/proposals/")
    proposal_id = submit_in_form(proposer.page, "vm.swappiness = 10", "0.7")  # two approvals

    bob.login("bob")
    bob.goto(f"/console/proposals/{proposal_id}/")
    carl = bob.new_session()
    carl.login("carl")
    carl.goto(f"/console/proposals/{proposal_id}/")
    carl.page.locator('#actions button[data-action="approve"]').click()
    expect(carl.page.locator("#dialog-approve")).to_contain_text("This is approval 1 of 2; it then waits for one more admin.")
    carl.check_accessibility()

    bob.page.locator('#actions button[data-action="approve"]').click()
    with bob.page.expect_navigation():
        bob.page.locator("#dialog-approve").get_by_role("button", name="Approve").click()
    expect(bob.page.locator("ul.messages")).to_have_text("Approved (1 of 2); waiting for one more admin.")

    expect(carl.page.locator("#kernel-stale")).to_be_visible()  # the dialog stays, the page says it is stale
    with carl.page.expect_navigation():
        carl.page.locator("#dialog-approve").get_by_role("button", name="Approve").click()
    expect(carl.page.locator("ul.messages")).to_contain_text("changed while you were looking at it")
    carl.page.locator('#actions button[data-action="approve"]').click()
    expect(carl.page.locator("#dialog-approve")).to_contain_text("This approval applies it now as revision 1 of sysctl.")
    with carl.page.expect_navigation():
        carl.page.locator("#dialog-approve").get_by_role("button", name="Approve").click()
    expect(carl.page.locator("ul.messages")).to_contain_text("applied as revision 1 of sysctl")
