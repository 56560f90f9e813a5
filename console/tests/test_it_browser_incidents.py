"""Console → Incidents in a real browser (aion.testing.browser): an incident acknowledged without a reload (htmx)."""

from __future__ import annotations

import pytest

from aion.incidents import record_incident
from aion.models import IncidentKind, SecurityIncident
from aion.roles import Role
from aion.testing.browser import playwright_api
from aion.testing.factories import make_user

expect = playwright_api().expect
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_incident_acknowledged(console_browser):
    make_user("sam", [Role.SECURITY_ADMIN])
    replay = record_incident(IncidentKind.REPLAY, "replayed_delivery", tenant_id="acme", source_ip="203.0.113.7")
    other = record_incident(IncidentKind.AUTH_FAILURE, "bad_password", tenant_id="acme")
    console_browser.login("sam")
    page = console_browser.page
    console_browser.goto("/console/security/incidents/")
    row = page.locator(f"#incident-{replay.pk}")
    expect(row).to_contain_text("replayed_delivery")
    expect(page.locator(f"#incident-{other.pk}")).to_be_visible()  # every kind on one page
    page.evaluate("window.__same_page = true")  # survives only if the page is not reloaded
    row.get_by_label(f"Note for incident {replay.pk}").fill("our own retry storm")
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#incidents-panel ul.messages")).to_contain_text(f"Incident {replay.pk} acknowledged.")
    expect(page.locator(f"#incident-{replay.pk}")).to_have_count(0)  # the open view no longer lists it
    assert page.evaluate("window.__same_page") is True
    incident = SecurityIncident.objects.get(pk=replay.pk)
    assert incident.state == "acknowledged" and incident.note == "our own retry storm" and incident.acknowledged_by == "user:sam"
    page.get_by_label("State").select_option("")  # all
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f"#incident-{replay.pk}")).to_contain_text("our own retry storm")
