"""Console errors are Console pages: 403 names the missing role, 404 and 500 keep the layout, all link back.

The 500 case needs a view that fails: this module is its own URLconf (the real one plus ``/console/boom/``,
a route that raises), because no real Console page can be made to crash on purpose.
"""

from __future__ import annotations

import html

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.urls import path

from aion.roles import Role
from aion.testing.factories import make_user
from aion.urls import urlpatterns as real_urlpatterns


def boom(request):
    raise RuntimeError("a Console view failed")


urlpatterns = [path("console/boom/", boom), *real_urlpatterns]
handler400 = "aion.problems.handler400"
handler403 = "aion.problems.handler403"
handler404 = "aion.problems.handler404"
handler500 = "aion.problems.handler500"

HTML = {"HTTP_ACCEPT": "text/html,application/xhtml+xml"}


def login(username: str, roles: list[str]) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(make_user(username, roles))
    return client


@pytest.mark.django_db
def test_a_403_is_a_console_page_naming_the_missing_role_and_linking_back():
    auditor = login("ada", [Role.AUDITOR])
    response = auditor.post("/console/proposals/new/", {"scope": "sysctl"}, HTTP_REFERER="http://testserver/console/proposals/", **HTML)
    assert response.status_code == 403 and response["Content-Type"].startswith("text/html")
    page = html.unescape(response.content.decode())
    assert "This page requires the role 'kernel.proposer'." in page
    assert '<p id="required-role">Ask an administrator for the role <code>kernel.proposer</code>' in page
    assert '<span id="your-roles">auditor</span>' in page
    assert '<a href="http://testserver/console/proposals/" id="error-back">Go back</a>' in page
    assert 'href="/console/" id="error-home"' in page
    assert 'href="/console/router/"' in page  # the Console layout (nav) around it
    # Several roles: the page lists them.
    nobody = login("bea", [Role.MEMORY_READER])
    page = nobody.get("/console/proposals/", **HTML).content.decode()
    assert "requires the role one of auditor, kernel.admin" in page and "<code>auditor, kernel.admin" in page
    # The API shape stays problem JSON, and now carries the same message.
    problem = nobody.get("/console/proposals/")
    assert problem.status_code == 403 and problem["Content-Type"] == "application/problem+json"
    assert "requires the role" in problem.json()["detail"]


@pytest.mark.django_db
def test_a_404_is_a_console_page_with_the_views_message():
    admin = login("cleo", [Role.KERNEL_ADMIN])
    response = admin.get("/console/proposals/00000000-0000-0000-0000-000000000000/", **HTML)
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "404 · Not Found" in page and "No such proposal." in page and 'id="error-home"' in page
    unknown = admin.get("/console/no-such-page/", **HTML).content.decode()
    assert "There is no such page." in unknown and "/console/no-such-page/" in unknown
    assert admin.get("/v1/no-such-route").json()["status"] == 404  # the API keeps problem JSON


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_500_is_a_console_page_rendered_without_the_database():
    admin = login("dina", [Role.KERNEL_ADMIN])
    response = admin.get("/console/boom/", **HTML)
    assert response.status_code == 500 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "500 · Internal Server Error" in page and 'id="error-home"' in page and "console.css" in page
    assert "a Console view failed" not in page  # no internals
    assert admin.get("/console/boom/").json()["status"] == 500  # a script still gets problem JSON


def test_the_500_template_needs_no_request_and_no_database():
    # No django_db mark: any query while rendering would raise.
    page = render_to_string("500.html", {"status": 500, "title": "Internal Server Error", "detail": "x", "request_id": "r-1"})
    assert "500 · Internal Server Error" in page and "<code>r-1</code>" in page and "Log out" not in page


@pytest.mark.django_db
def test_a_bodyless_console_error_still_gets_the_shared_page():
    admin = login("eve", [Role.KERNEL_ADMIN])
    response = admin.get("/console/logout/", **HTML)  # POST only: a bare 405 filled in by ErrorBodyMiddleware
    assert response.status_code == 405
    page = response.content.decode()
    assert 'id="error-page"' in page and "GET is not allowed here" in page


# --- In a real browser ----------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_in_a_browser_errors_are_console_pages_that_name_the_role_and_link_back(console_browser):
    from playwright.sync_api import expect

    make_user("fay", [Role.MEMORY_READER])
    console_browser.login("fay")
    page = console_browser.page
    console_browser.goto("/console/")
    page.get_by_role("link", name="Proposals").click()
    expect(page.get_by_role("heading", name="403 · Forbidden")).to_be_visible()
    expect(page.locator("#error-page")).to_contain_text("This page requires the role one of auditor, kernel.admin")
    expect(page.locator("#your-roles")).to_have_text("memory.reader")
    expect(page.get_by_role("navigation").get_by_role("link", name="Router")).to_be_visible()  # the Console layout
    page.get_by_role("link", name="Go back").click()
    expect(page).to_have_url(console_browser.url("/console/"))

    make_user("gil", [Role.KERNEL_ADMIN])
    admin = console_browser.new_session()
    admin.login("gil")
    admin.goto("/console/proposals/00000000-0000-0000-0000-000000000000/")
    expect(admin.page.get_by_role("heading", name="404 · Not Found")).to_be_visible()
    expect(admin.page.locator("#error-page")).to_contain_text("No such proposal.")
    admin.page.get_by_role("link", name="return to the Console").click()
    expect(admin.page).to_have_url(admin.url("/console/"))
