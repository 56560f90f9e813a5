"""The kernel Console in a real browser (aion.testing.browser): the diff per state and multi-approval feedback (issue 16 §1.1, §1.2).

Personas: two kernel admins (ada, bob) and an auditor (carol) of acme, an outsider (eve, kernel admin of globex);
proposals come from a proposer's API key, as a module or a person with a script would submit them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from aion.roles import Role
from aion.testing.browser import playwright_api
from aion.testing.factories import OTHER_TENANT, make_user
from aion.testing.kernel_proposals import persona, submit

if TYPE_CHECKING:
    from playwright.sync_api import Page

expect = playwright_api().expect
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture()
def people() -> None:
    make_user("ada", [Role.KERNEL_ADMIN])
    make_user("bob", [Role.KERNEL_ADMIN])
    make_user("carol", [Role.AUDITOR])
    make_user("eve", [Role.KERNEL_ADMIN, Role.KERNEL_PROPOSER], tenant=OTHER_TENANT)


def proposal(risk: float = 0.2, frm: Any = None, to: Any = 4096) -> dict[str, Any]:
    proposer = persona([Role.KERNEL_PROPOSER], name="proposer")
    return submit(proposer, changes=[{"key": "net.core.somaxconn", "from": frm, "to": to}], risk_score=risk)


def act_in_dialog(page: Page, action: str, text: str = "") -> None:
    """Opens ACTION's confirmation dialog, fills its text, confirms it, and waits for the page it returns to."""
    page.locator(f'#actions button[data-action="{action}"]').click()
    dialog = page.locator(f"#dialog-{action}")
    expect(dialog).to_be_visible()
    if text:
        dialog.locator("textarea").fill(text)
    with page.expect_navigation():
        dialog.locator('button[type="submit"]').click()


def test_an_applied_proposal_shows_from_to_and_its_revision_and_its_rollback_both_revisions(console_browser, people):
    page = console_browser.page
    created = proposal()
    detail = f"/console/proposals/{created['id']}/"
    console_browser.login("ada")
    console_browser.goto(detail)
    expect(page.locator("#diff-note")).to_contain_text("Current value of revision 0 → proposed value")
    expect(page.locator("#diff")).not_to_contain_text("drifted")

    act_in_dialog(page, "approve", "looks right")
    expect(page.locator("ul.messages")).to_contain_text("Done: the proposal is now applied as revision 1 of sysctl.")
    expect(page.locator("#proposal-state")).to_have_text("Applied")
    expect(page.locator("#diff-note")).to_contain_text("Applied as revision 1.")
    row = page.locator('#diff tr[data-key="net.core.somaxconn"]')
    expect(row.locator(".diff-old")).to_have_text("(absent)")  # the original value stays visible
    expect(row.locator(".diff-new")).to_have_text("4096")
    expect(page.locator("#changes")).not_to_contain_text("drifted")

    act_in_dialog(page, "rollback", "p99 regression")
    expect(page.locator("ul.messages")).to_contain_text("rolled back as revision 2 of sysctl")
    expect(page.locator("#diff-note")).to_contain_text(
        "Applied as revision 1, rolled back as revision 2 (which restores the document of revision 0)."
    )
    expect(page.locator("#changes")).not_to_contain_text("drifted")

    console_browser.goto("/console/proposals/config/sysctl/")
    expect(page.locator("h1")).to_contain_text("revision 2")
    expect(page.locator("#document")).to_contain_text("Empty: revision 2 (rollback of revision 1) sets no keys.")
    expect(page.get_by_text("nothing applied yet")).to_have_count(0)
    expect(page.locator("#revisions tr[data-revision]")).to_have_count(2)


def test_a_pending_proposal_marks_drift_only_when_the_current_value_is_not_its_from(console_browser, people):
    page = console_browser.page
    bob = console_browser.new_session()
    base = proposal(frm=None, to=1024)  # applied by bob below: revision 1 sets 1024
    stale = proposal(frm=None, to=2048)  # proposed from "absent", which revision 1 overtakes
    fresh_after = None
    bob.login("bob")
    bob.goto(f"/console/proposals/{base['id']}/")
    act_in_dialog(bob.page, "approve")
    fresh_after = proposal(frm=1024, to=4096)

    console_browser.login("ada")
    console_browser.goto(f"/console/proposals/{stale['id']}/")
    row = page.locator('#diff tr[data-key="net.core.somaxconn"]')
    expect(row).to_contain_text("drifted")
    expect(row.locator(".diff-old")).to_contain_text("1024 (proposed from (absent))")
    console_browser.goto(f"/console/proposals/{fresh_after['id']}/")
    expect(page.locator("#diff-note")).to_contain_text("Current value of revision 1 → proposed value")
    expect(page.locator('#diff tr[data-key="net.core.somaxconn"] .diff-old')).to_have_text("1024")
    expect(page.locator("#diff")).not_to_contain_text("drifted")


def test_the_first_of_two_approvals_says_so_and_disables_approve_for_that_admin(console_browser, people):
    page = console_browser.page
    created = proposal(risk=0.6)  # the shipped policy's 0.5 band: two approvals
    detail = f"/console/proposals/{created['id']}/"
    console_browser.login("ada")
    console_browser.goto(detail)
    act_in_dialog(page, "approve", "first look")

    expect(page.locator("ul.messages")).to_have_text("Approved (1 of 2); waiting for one more admin.")
    expect(page.get_by_text("now pending")).to_have_count(0)
    expect(page.locator("#proposal-state")).to_have_text("Pending")
    approve = page.locator('#actions button[data-action="approve"]')
    expect(approve).to_be_disabled()
    why = "You have approved this already (1 of 2); waiting for one more admin: each admin counts once."
    expect(approve).to_have_attribute("title", why)
    expect(approve).to_have_accessible_description(why)
    expect(page.locator("#dialog-approve")).to_have_count(0)
    approval_row = page.locator("#history tr", has_text="kernel.proposal.approve")
    expect(approval_row).to_contain_text("approval 1 of 2 recorded; still pending")
    expect(approval_row).not_to_contain_text("→ pending")
    # Reject stays available: having approved does not take away the admin's other duties.
    expect(page.locator('#actions button[data-action="reject"]')).to_be_enabled()

    bob = console_browser.new_session()
    bob.login("bob")
    bob.goto(detail)
    expect(bob.page.locator('#actions button[data-action="approve"]')).to_be_enabled()
    act_in_dialog(bob.page, "approve", "second look")
    expect(bob.page.locator("ul.messages")).to_contain_text("Done: the proposal is now applied as revision 1 of sysctl.")
    expect(bob.page.locator("#diff-note")).to_contain_text("Applied as revision 1.")
    expect(bob.page.locator("#history tr", has_text="kernel.proposal.approve").nth(1)).to_contain_text("→ approved")


def test_an_auditor_reads_the_page_without_actions_and_an_outsider_gets_404(console_browser, people):
    created = proposal()
    detail = f"/console/proposals/{created['id']}/"
    console_browser.login("carol")
    console_browser.goto(detail)
    expect(console_browser.page.locator("#diff")).to_contain_text("net.core.somaxconn")
    expect(console_browser.page.locator("#actions button")).to_have_count(0)

    eve = console_browser.new_session()
    eve.login("eve")
    response = eve.goto(detail)
    assert response is not None and response.status == 404
    expect(eve.page.get_by_text("net.core.somaxconn")).to_have_count(0)
