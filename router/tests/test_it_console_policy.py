"""Console Router page: the policy diff is compact and readable, and Rollback offers the stored revisions."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from aion.roles import Role
from aion.testing.factories import make_user
from router import services
from router.models import PolicyRevision

pytestmark = pytest.mark.django_db

TARGETS = "\n".join(f"  - {{name: local-{n}, kind: module, endpoint: 'http://127.0.0.1:9'}}" for n in range(60))
POLICY = f"version: 1\ntargets:\n{TARGETS}\ndefault: {{route: local, strategy: priority, candidates: [local-0]}}\n"


def console(username: str, roles: list[str]) -> Client:
    client = Client()
    client.force_login(make_user(username, roles))
    return client


def options(page: str) -> list[tuple[str, bool, str]]:
    select = re.search(r'<select name="revision" id="rollback-revision"[^>]*>(.*?)</select>', page, re.S)
    assert select, "no rollback menu"
    return [
        (value, bool(disabled), label)
        for value, disabled, label in re.findall(r'<option value="(\d+)"( disabled)?>([^<]*)</option>', select.group(1))
    ]


def test_the_rollback_menu_lists_the_revisions_and_explains_when_there_is_none(policy_file):
    policy_file.write(POLICY)
    services.bootstrap_policy()  # what the migrate job runs
    admin = console("ada", [Role.ROUTER_ADMIN])
    first = html.unescape(admin.get("/console/router/").content.decode())
    assert options(first) == [("1", True, options(first)[0][2])] and "(active)" in options(first)[0][2]
    assert re.search(r'<select name="revision" id="rollback-revision" style="width:auto" disabled', first)
    assert 'id="rollback-button" disabled title="No other revision to roll back to yet"' in first
    assert "No other revision to roll back to yet" in first

    policy_file.write(POLICY.replace("priority", "least-busy"))
    assert admin.post("/console/router/reload").status_code == 302
    page = html.unescape(admin.get("/console/router/").content.decode())
    menu = options(page)
    assert [(value, disabled) for value, disabled, _ in menu] == [("2", True), ("1", False)]
    assert menu[1][2].startswith("r1 · Bootstrap · ") and menu[0][2].endswith("(active)")
    assert 'id="rollback-button" onclick=' in page

    assert admin.post("/console/router/rollback", {"revision": "1"}).status_code == 302
    menu = options(html.unescape(admin.get("/console/router/").content.decode()))
    assert [(value, disabled) for value, disabled, _ in menu] == [("3", True), ("2", False), ("1", True)]
    assert menu[2][2].endswith("(same content as the active one)")  # r3 restored r1: choosing r1 would change nothing
    assert PolicyRevision.objects.get(number=3).restored_from == 1


def test_the_policy_diff_is_a_compact_light_scrollable_block(policy_file):
    policy_file.write(POLICY)
    services.bootstrap_policy()
    admin = console("bea", [Role.ROUTER_ADMIN])
    policy_file.write(POLICY.replace("local-30,", "local-thirty,"))
    admin.post("/console/router/reload")
    page = admin.get("/console/router/?a=1&b=2").content.decode()
    block = re.search(r'<pre id="policy-diff" class="diff" tabindex="0"[^>]*>(.*?)</pre>', page, re.S)
    assert block, "the diff is not the compact .diff block"
    lines = re.findall(r'<span class="diff-(\w+)">', block.group(1))
    assert lines.count("new") == 1 and lines.count("old") == 1 and lines.count("hunk") == 1
    assert len(lines) <= 2 + 1 + 2 + 2 * 3  # headers, one hunk, the change, three lines of context each side
    assert "\n" not in block.group(1)  # one block element per line: no blank line between them


def test_the_router_page_stays_closed_to_readers_and_read_only_for_auditors(policy_file):
    policy_file.write(POLICY)
    assert console("cleo", [Role.MEMORY_READER]).get("/console/router/").status_code == 403
    auditor = console("dina", [Role.AUDITOR])
    page = auditor.get("/console/router/").content.decode()
    assert page and 'id="rollback-form"' not in page
    assert auditor.post("/console/router/rollback", {"revision": "1"}).status_code == 403
    assert not PolicyRevision.objects.exists()  # reading the page stores nothing


# --- In a real browser ----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_the_diff_is_short_and_readable_and_rollback_works(console_browser, policy_file):
    from playwright.sync_api import expect

    from aion.auth.principal import system_principal
    from aion.testing.contrast import low_contrast_text

    policy_file.write(POLICY)
    services.bootstrap_policy()
    policy_file.write(POLICY.replace("local-30,", "local-thirty,"))
    services.reload_policy(actor=system_principal("acme", "test"), tenant_id="acme")
    make_user("tess", [Role.ROUTER_ADMIN])
    console_browser.login("tess")
    page = console_browser.page
    console_browser.goto("/console/router/?a=0&b=2")  # the whole file, as added: the long case
    diff = page.locator("#policy-diff")
    expect(diff).to_be_visible()
    assert diff.bounding_box()["height"] <= 400
    assert diff.evaluate("e => e.scrollHeight > e.clientHeight")  # the rest scrolls inside the block
    checked, failures = low_contrast_text(page)
    assert checked > 10 and failures == []
    menu = page.get_by_label("Roll back to")
    expect(menu.locator("option")).to_have_count(2)
    expect(menu).to_have_value("1")  # the active r2 cannot be chosen
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Rollback").click()
    expect(page.get_by_text("Rolled back to r1 as r3.")).to_be_visible()
    expect(menu.locator("option:not([disabled])")).to_have_text(
        ["r2 · Reload · " + PolicyRevision.objects.get(number=2).created_at.strftime("%Y-%m-%d %H:%M") + " · system:test"]
    )
