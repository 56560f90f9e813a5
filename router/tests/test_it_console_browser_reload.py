"""Console → Router in a real browser (aion.testing.browser): reload from the file, then roll back, as an admin would."""

from __future__ import annotations

import pytest

from aion.roles import Role
from aion.testing.browser import playwright_api
from aion.testing.factories import make_user
from router import services
from router.models import PolicyRevision
from router.tests.test_it_console_policy import POLICY

expect = playwright_api().expect
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture()
def served_policy(policy_file, monkeypatch):
    """The served process reads the same policy file as this test (its settings come from the environment)."""
    monkeypatch.setenv("AION_ROUTER_POLICY_PATH", str(policy_file.path))
    return policy_file


def test_router_reload_and_rollback(served_policy, console_browser):
    served_policy.write(POLICY)
    services.bootstrap_policy()
    make_user("tess", [Role.ROUTER_ADMIN])
    console_browser.login("tess")
    page = console_browser.page
    console_browser.goto("/console/router/")
    expect(page.locator("#rollback-button")).to_be_disabled()  # only r1 so far

    served_policy.write(POLICY.replace("strategy: priority", "strategy: least-busy"))
    page.get_by_role("button", name="Reload from file").click()
    expect(page.get_by_text("Activated revision r2.")).to_be_visible()
    expect(page.locator("h2", has_text="Active policy")).to_contain_text("r2")
    expect(page.locator("#policy-diff")).to_contain_text("least-busy")
    page.get_by_role("button", name="Reload from file").click()
    expect(page.get_by_text("No change: r2 is already active.")).to_be_visible()

    menu = page.get_by_label("Roll back to")
    expect(menu).to_have_value("1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rollback").click()
    expect(page.get_by_text("Rolled back to r1 as r3.")).to_be_visible()
    expect(page.locator("h2", has_text="Active policy")).to_contain_text("r3")
    assert PolicyRevision.objects.get(number=3).restored_from == 1
