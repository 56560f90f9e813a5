"""The Console audit page: auditor only, tenant-scoped, filters, and a record's before/after diff."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from aion import audit
from aion.auth.principal import system_principal
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, make_user

pytestmark = pytest.mark.django_db


def browser(user):
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture()
def records():
    actor = system_principal(TENANT, name="alice")
    return {
        "approved": audit.record(
            "proposal.approved",
            "proposal",
            7,
            actor=actor,
            tenant_id=TENANT,
            before={"state": "pending", "x": 1},
            after={"state": "approved", "y": 2},
        ),
        "module": audit.record("module.activated", "module", "vision", actor=actor, tenant_id=TENANT),
        "foreign": audit.record("proposal.approved", "proposal", 99, actor=system_principal(OTHER_TENANT), tenant_id=OTHER_TENANT),
    }


def test_auditor_sees_and_filters_their_tenant(records):
    client = browser(make_user("ann", [Role.AUDITOR]))
    page = client.get(reverse("console:audit"))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-record="{records["approved"].pk}"' in html
    assert f'data-record="{records["foreign"].pk}"' not in html
    filtered = client.get(reverse("console:audit"), {"resource": "module"}).content.decode()
    assert f'data-record="{records["module"].pk}"' in filtered
    assert f'data-record="{records["approved"].pk}"' not in filtered
    bad = client.get(reverse("console:audit"), {"since": "not a date"})
    assert bad.status_code == 200 and 'id="filter-errors"' in bad.content.decode()


def test_detail_shows_the_diff(records):
    client = browser(make_user("ann", [Role.AUDITOR]))
    html = client.get(reverse("console:audit-detail", args=[records["approved"].pk])).content.decode()
    assert 'data-field="state" data-status="changed"' in html
    assert 'data-field="x" data-status="removed"' in html
    assert 'data-field="y" data-status="added"' in html
    assert client.get(reverse("console:audit-detail", args=[records["foreign"].pk])).status_code == 404


def test_console_audit_needs_login_and_the_auditor_role(records):
    anonymous = Client().get(reverse("console:audit"))
    assert anonymous.status_code == 302 and "/console/login/" in anonymous["Location"]
    staff = make_user("root", [Role.KERNEL_ADMIN])
    staff.is_staff = staff.is_superuser = True
    staff.save()
    assert browser(staff).get(reverse("console:audit")).status_code == 403
