"""Console → Incidents on Forms and htmx: the acknowledge form (the service's note rule), the live panel, the filters."""

from __future__ import annotations

import pytest
from django.test import Client

from aion.incidents import MAX_NOTE, record_incident
from aion.models import IncidentKind, SecurityIncident
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, make_user

pytestmark = pytest.mark.django_db
PAGE = "/console/security/incidents/"


def login(username: str, roles: list[str], tenant: str = TENANT) -> Client:
    client = Client()
    client.force_login(make_user(username, roles=roles, tenant=tenant))
    return client


def test_acknowledge_over_htmx_swaps_the_panel_with_the_new_state():
    incident = record_incident(IncidentKind.REPLAY, "replayed", tenant_id=TENANT)
    admin = login("sam", [Role.SECURITY_ADMIN])
    url = f"{PAGE}{incident.pk}/acknowledge"
    too_long = admin.post(url, {"note": "x" * (MAX_NOTE + 1), "filters": "state=all"}, HTTP_HX_REQUEST="true")
    assert too_long.status_code == 200 and f'<li class="error">Incident {incident.pk}: ' in too_long.content.decode()
    assert str(MAX_NOTE) in too_long.content.decode()
    blank = admin.post(url, {"note": "   "}, HTTP_HX_REQUEST="true").content.decode()
    assert f'<li class="error">Incident {incident.pk}: ' in blank
    assert SecurityIncident.objects.get(pk=incident.pk).state == "open"
    done = admin.post(url, {"note": "known scanner", "filters": "state=all"}, HTTP_HX_REQUEST="true")
    html = done.content.decode()
    assert html.lstrip().startswith('<section class="card" id="incidents-panel"') and f"Incident {incident.pk} acknowledged." in html
    assert "acknowledged" in html and "known scanner" in html  # state=all kept: the acknowledged row stays in view
    assert 'hx-get="/console/security/incidents/?state=all"' in html
    again = admin.post(url, {"note": "second"}, HTTP_HX_REQUEST="true").content.decode()
    assert "was already acknowledged" in again
    assert SecurityIncident.objects.get(pk=incident.pk).note == "known scanner"


def test_the_filter_form_is_the_apis_filterset_and_keeps_the_selection():
    record_incident(IncidentKind.AUTH_FAILURE, "bad_password", tenant_id=TENANT, source_ip="203.0.113.9")
    auditor = login("audrey", [Role.AUDITOR])
    html = auditor.get(PAGE, {"kind": "auth_failure", "source": "203.0.113.9"}).content.decode()
    assert '<option value="auth_failure" selected>' in html and 'value="203.0.113.9"' in html
    assert html.count("data-incident=") == 1
    partial = auditor.get(PAGE, {"kind": "auth_failure"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "data-incident=" in partial
    assert "Acknowledge</button>" not in partial


def test_negative_authorisation_of_the_htmx_acknowledge():
    incident = record_incident(IncidentKind.REPLAY, "replayed", tenant_id=TENANT)
    url = f"{PAGE}{incident.pk}/acknowledge"
    assert login("audrey", [Role.AUDITOR]).post(url, {"note": "x"}, HTTP_HX_REQUEST="true").status_code == 403
    outsider = login("oscar", [Role.SECURITY_ADMIN], tenant=OTHER_TENANT)
    assert outsider.post(url, {"note": "x"}, HTTP_HX_REQUEST="true").status_code == 404
    assert SecurityIncident.objects.get(pk=incident.pk).state == "open"
