"""Tenancy and RBAC: another tenant's objects are 404 (read and write), Console roles come from groups, staff get nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from aion import audit
from aion.auth.principal import principal_for_user, system_principal
from aion.models import AuditRecord, UserTenant
from aion.roles import ALL_ROLES, Role
from aion.testing.factories import OTHER_TENANT, TENANT, client_with_roles, make_api_key, make_user

pytestmark = pytest.mark.django_db


def test_roles_are_the_named_permissions():
    assert {
        "kernel.admin",
        "kernel.proposer",
        "kernel.breakglass",
        "hooks.admin",
        "memory.writer",
        "memory.reader",
        "router.admin",
        "modules.admin",
        "security.admin",
        "auditor",
        "kernel.agent",  # issue 17: node agents
    } == ALL_ROLES


def test_console_roles_come_from_groups_and_staff_is_not_admin():
    staff = User.objects.create_user("root-ish", password="pw-for-tests-only", is_staff=True, is_superuser=True)
    UserTenant.objects.create(user=staff, tenant_id=TENANT)
    assert principal_for_user(staff).roles == frozenset()
    auditor = make_user("ann", [Role.AUDITOR])
    principal = principal_for_user(auditor)
    assert principal.roles == {"auditor"} and principal.tenant_id == TENANT

    browser = Client()
    browser.force_login(staff)
    assert browser.get("/v1/audit").status_code == 403
    browser.force_login(auditor)
    assert browser.get("/v1/audit").status_code == 200


def test_another_tenants_object_is_404_for_read_and_write():
    foreign = audit.record("probe", "probe", 1, actor=system_principal(OTHER_TENANT), tenant_id=OTHER_TENANT)
    mine = audit.record("probe", "probe", 2, actor=system_principal(TENANT), tenant_id=TENANT)
    owner = client_with_roles(sorted(ALL_ROLES), tenant=TENANT)
    assert owner.get(f"/v1/audit/{mine.pk}").status_code == 200
    assert owner.get(f"/v1/audit/{foreign.pk}").status_code == 404
    for method in ("put", "patch", "delete"):
        # The log is read-only for everyone, so writes are refused by the method check, before the lookup: a 405
        # for the foreign record exactly as for one's own (a 403 or 404 would tell the two apart).
        for pk in (foreign.pk, mine.pk):
            answer = getattr(owner, method)(f"/v1/audit/{pk}", {}, format="json")
            assert answer.status_code == 405, f"{method.upper()} /v1/audit/{pk} -> {answer.status_code}"
    assert AuditRecord.objects.filter(pk=foreign.pk).exists()


def test_another_tenants_writable_object_cannot_be_read_changed_or_deleted(settings):
    settings.ROOT_URLCONF = "aion.tests.gateway_urls"
    _, mine = make_api_key([Role.AUDITOR], tenant=TENANT, name="mine")
    _, theirs = make_api_key([Role.AUDITOR], tenant=OTHER_TENANT, name="theirs")
    owner = client_with_roles([Role.KERNEL_ADMIN], tenant=TENANT)
    assert owner.patch(f"/v1/test/keys/{mine.pk}", {"name": "renamed"}, format="json").status_code == 200
    assert owner.get(f"/v1/test/keys/{theirs.pk}").status_code == 404
    assert owner.patch(f"/v1/test/keys/{theirs.pk}", {"name": "pwned"}, format="json").status_code == 404
    assert owner.delete(f"/v1/test/keys/{theirs.pk}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "theirs"
    # Same-tenant teammate without the role: 403; no credential: 401.
    assert (
        client_with_roles([Role.AUDITOR], tenant=TENANT).patch(f"/v1/test/keys/{mine.pk}", {"name": "x"}, format="json").status_code == 403
    )
    from aion.testing.factories import api_client

    assert api_client().patch(f"/v1/test/keys/{mine.pk}", {"name": "x"}, format="json").status_code == 401
