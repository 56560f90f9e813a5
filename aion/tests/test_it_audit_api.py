"""GET /v1/audit: auditor only, tenant-scoped (404 across tenants), filters by actor, action, resource and time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aion import audit
from aion.auth.principal import system_principal
from aion.models import AuditRecord
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, api_client, client_with_roles

pytestmark = pytest.mark.django_db


def _record(action, resource_type, resource_id, *, tenant=TENANT, actor_name="alice", at=None):
    actor = system_principal(tenant, name=actor_name)
    entry = audit.record(action, resource_type, resource_id, actor=actor, tenant_id=tenant, before={"state": "a"}, after={"state": "b"})
    # Back-date the record (time is data here, not something to wait for).
    AuditRecord.objects.filter(pk=entry.pk).update(created_at=at or timezone.now())
    entry.refresh_from_db()
    return entry


@pytest.fixture()
def records():
    now = timezone.now()
    return {
        "old": _record("proposal.submitted", "proposal", 1, at=now - timedelta(days=3)),
        "approve": _record("proposal.approved", "proposal", 1, actor_name="bob", at=now - timedelta(hours=1)),
        "module": _record("module.activated", "module", "vision", at=now),
        "foreign": _record("proposal.approved", "proposal", 9, tenant=OTHER_TENANT, at=now),
    }


def test_auditor_lists_only_their_tenant(records):
    response = client_with_roles([Role.AUDITOR]).get("/v1/audit")
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert records["foreign"].pk not in ids
    assert {records["old"].pk, records["approve"].pk, records["module"].pk} <= set(ids)
    row = next(r for r in response.json()["results"] if r["id"] == records["approve"].pk)
    assert row["before"] == {"state": "a"} and row["after"] == {"state": "b"}
    assert row["actor"] == "system:bob"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=system:bob", {"approve"}),
        ("action=proposal.approved", {"approve"}),
        ("action_prefix=proposal.", {"old", "approve"}),
        ("resource=proposal:1", {"old", "approve"}),
        ("resource=module", {"module"}),
        ("resource_type=module&resource_id=vision", {"module"}),
    ],
)
def test_filters(records, query, expected):
    response = client_with_roles([Role.AUDITOR]).get(f"/v1/audit?{query}")
    assert response.status_code == 200
    by_id = {records[name].pk: name for name in records}
    got = {by_id[row["id"]] for row in response.json()["results"] if row["id"] in by_id}
    assert got == expected


def test_time_window(records):
    since = (timezone.now() - timedelta(days=1)).isoformat()
    until = (timezone.now() - timedelta(minutes=30)).isoformat()
    client = client_with_roles([Role.AUDITOR])
    response = client.get("/v1/audit", {"since": since, "until": until})
    assert [row["id"] for row in response.json()["results"] if row["resource_type"] != "audit"] == [records["approve"].pk]
    bad = client.get("/v1/audit", {"since": "yesterday-ish"})
    assert bad.status_code == 400
    assert bad["Content-Type"].startswith("application/problem+json")


def test_detail_and_negative_authorisation(records):
    auditor = client_with_roles([Role.AUDITOR])
    assert auditor.get(f"/v1/audit/{records['approve'].pk}").json()["action"] == "proposal.approved"
    # another tenant's record does not exist for this caller
    assert auditor.get(f"/v1/audit/{records['foreign'].pk}").status_code == 404
    # no credential, wrong role
    assert api_client().get("/v1/audit").status_code == 401
    assert client_with_roles([Role.KERNEL_ADMIN]).get("/v1/audit").status_code == 403
    # the log is read-only, even for an auditor
    assert auditor.post("/v1/audit", {}, format="json").status_code in (403, 405)
    assert auditor.delete(f"/v1/audit/{records['approve'].pk}").status_code in (403, 405)
