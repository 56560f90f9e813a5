"""Console → Webhooks in a real browser (aion.testing.browser): a refused endpoint keeps the typed URL and says why."""

from __future__ import annotations

import pytest

from aion.roles import Role
from aion.testing.browser import playwright_api
from aion.testing.factories import make_user
from hooks.models import WebhookEndpoint

expect = playwright_api().expect
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_form_error_keeps_what_was_typed(console_browser, settings):
    from django.conf import global_settings

    # The hooks fixtures hash test passwords with MD5, which the served process does not accept: Django's default here.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    make_user("olivia", [Role.HOOKS_ADMIN])
    console_browser.login("olivia")
    page = console_browser.page
    console_browser.goto("/console/webhooks/")
    form = page.locator("#create-endpoint")
    typed = "http://127.0.0.1:9/receiver"  # the served instance refuses private destinations
    form.get_by_label("URL").fill(typed)
    form.get_by_label("Event types (comma-separated, wildcards allowed)").fill("memory.*, kernel.proposal.applied")
    form.get_by_label("Description").fill("the on-call pager")
    form.get_by_role("button", name="Create").click()
    expect(form.locator(".form-errors")).to_contain_text("The URL is not an allowed webhook destination.")
    expect(form.get_by_label("URL")).to_have_value(typed)
    expect(form.get_by_label("Event types (comma-separated, wildcards allowed)")).to_have_value("memory.*, kernel.proposal.applied")
    expect(form.get_by_label("Description")).to_have_value("the on-call pager")
    assert not WebhookEndpoint.objects.exists()
