"""Console → Incidents: every kind with the API's filters, acknowledge with a note, tenancy and roles."""

from __future__ import annotations

import pytest
from django.test import Client

from aion.incidents import record_incident
from aion.models import AuditRecord, IncidentKind, SecurityIncident
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, make_user

pytestmark = pytest.mark.django_db

PAGE = "/console/security/incidents/"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def login(username: str, roles: list[str], tenant: str = TENANT) -> Client:
    make_user(username, roles=roles, tenant=tenant)
    client = Client()
    assert client.login(username=username, password="pw-for-tests-only")
    return client


@pytest.fixture()
def every_kind():
    return {kind: record_incident(kind, "r", tenant_id=TENANT, source_ip="203.0.113.20") for kind in IncidentKind.values}


def test_the_page_lists_every_kind_and_filters_by_kind(every_kind):
    foreign = record_incident(IncidentKind.HOOK_SIGNATURE, "bad_signature", tenant_id=OTHER_TENANT)
    unverified = record_incident(IncidentKind.HOOK_SIGNATURE, "unknown_tenant", claimed_tenant=TENANT)
    auditor = login("audrey", [Role.AUDITOR])
    html = auditor.get(PAGE).content.decode()
    for kind, incident in every_kind.items():
        assert f'data-incident="{incident.pk}" data-kind="{kind}"' in html
    assert f'data-incident="{foreign.pk}"' not in html and f'data-incident="{unverified.pk}"' not in html
    assert "Acknowledge</button>" not in html  # an auditor reads only
    filtered = auditor.get(PAGE, {"kind": "self_approval"}).content.decode()
    assert filtered.count("data-incident=") == 1 and f'data-incident="{every_kind["self_approval"].pk}"' in filtered
    bad = auditor.get(PAGE, {"kind": "bogus", "since": "yesterday-ish"}).content.decode()
    assert 'id="filter-errors"' in bad and "data-incident=" not in bad


def test_acknowledge_with_a_note_from_the_console(every_kind):
    admin = login("sam", [Role.SECURITY_ADMIN])
    incident = every_kind[IncidentKind.AUTH_FAILURE]
    url = f"{PAGE}{incident.pk}/acknowledge"
    blank = admin.post(url, {"note": "  "})
    assert blank.status_code == 302
    assert SecurityIncident.objects.get(pk=incident.pk).state == "open"
    done = admin.post(url, {"note": "pen test from our red team", "filters": "kind=auth_failure\r\nX: y"})
    assert done.status_code == 302 and done["Location"].startswith(PAGE + "?kind=auth_failure")
    incident.refresh_from_db()
    assert incident.state == "acknowledged" and incident.acknowledged_by == "user:sam" and incident.note == "pen test from our red team"
    assert AuditRecord.objects.get(action="security_incident.acknowledged").before["state"] == "open"
    # open incidents are the default view; all shows the acknowledged one with its note
    assert f'data-incident="{incident.pk}"' not in admin.get(PAGE).content.decode()
    assert "pen test from our red team" in admin.get(PAGE, {"state": "all"}).content.decode()


def test_negative_authorisation(every_kind):
    incident = every_kind[IncidentKind.REPLAY]
    url = f"{PAGE}{incident.pk}/acknowledge"
    anonymous = Client().get(PAGE)
    assert anonymous.status_code == 302 and "/console/login/" in anonymous["Location"]
    assert login("mel", [Role.MEMORY_READER]).get(PAGE).status_code == 403
    assert login("audrey", [Role.AUDITOR]).post(url, {"note": "x"}).status_code == 403
    outsider = login("oscar", [Role.SECURITY_ADMIN, Role.AUDITOR], tenant=OTHER_TENANT)
    assert outsider.post(url, {"note": "x"}).status_code == 404
    assert "data-incident=" not in outsider.get(PAGE).content.decode()
    assert SecurityIncident.objects.get(pk=incident.pk).state == "open"


def test_the_dashboard_badge_counts_open_incidents_the_user_can_see(every_kind):
    platform = record_incident(IncidentKind.AUTH_FAILURE, "too_many_failed_credentials")
    user = login("sam", [Role.SECURITY_ADMIN])
    assert f'id="incident-badge">{len(every_kind)}<' in user.get("/console/").content.decode()
    user.post(f"{PAGE}{every_kind['replay'].pk}/acknowledge", {"note": "retry"})
    assert f'id="incident-badge">{len(every_kind) - 1}<' in user.get("/console/").content.decode()
    # a platform admin (also a member of the platform tenant) counts the platform tenant's too
    from django.contrib.auth.models import User

    User.objects.get(username="sam").tenants.create(tenant_id="platform")
    assert f'id="incident-badge">{len(every_kind)}<' in user.get("/console/").content.decode()
    assert f'data-incident="{platform.pk}"' in user.get(PAGE).content.decode()
