"""/v1/security/incidents: list, filter, detail and acknowledge; tenancy (owner, teammate, outsider); the platform tenant."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml
from django.test import override_settings
from django.utils import timezone

from aion.incidents import MAX_NOTE, record_incident
from aion.models import AuditRecord, IncidentKind, OutboxEvent, SecurityIncident
from aion.roles import Role
from aion.testing.factories import OTHER_TENANT, TENANT, api_client, client_with_roles, make_user
from aion.topics import SECURITY_INCIDENTS, validate_event

pytestmark = pytest.mark.django_db

LIST = "/v1/security/incidents"
PLATFORM = "platform"


def _incident(kind=IncidentKind.HOOK_SIGNATURE, reason="bad_signature", *, tenant=TENANT, ip="203.0.113.1", at=None, **fields):
    incident = record_incident(kind, reason, tenant_id=tenant, source_ip=ip, **fields)
    if at is not None:  # back-date it (time is data here, not something to wait for)
        SecurityIncident.objects.filter(pk=incident.pk).update(created_at=at)
        incident.refresh_from_db()
    return incident


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture()
def owner():
    """The tenant's security admin (may read and acknowledge)."""
    return client_with_roles([Role.SECURITY_ADMIN, Role.AUDITOR])


@pytest.fixture()
def teammate():
    """Same tenant, auditor only: reads, never acknowledges."""
    return client_with_roles([Role.AUDITOR])


@pytest.fixture()
def outsider():
    """Every incident role, in another tenant."""
    return client_with_roles([Role.SECURITY_ADMIN, Role.AUDITOR], tenant=OTHER_TENANT)


@pytest.fixture()
def incidents():
    now = timezone.now()
    return {
        "hook": _incident(at=now - timedelta(hours=1)),
        "module": _incident(IncidentKind.MODULE_SIGNATURE, "retired_key", ip=None, at=now - timedelta(days=3)),
        "replay": _incident(IncidentKind.REPLAY, "duplicate_delivery", ip="198.51.100.4"),
        "auth": _incident(IncidentKind.AUTH_FAILURE, "too_many_failed_credentials", ip="198.51.100.4"),
        "self": _incident(IncidentKind.SELF_APPROVAL, "approve", ip=None),
        "foreign": _incident(tenant=OTHER_TENANT, ip="203.0.113.2"),
        "platform": _incident(tenant="", ip="203.0.113.3"),
    }


def test_an_auditor_lists_every_kind_of_their_tenant_only_paginated(teammate, incidents):
    response = teammate.get(LIST)
    mine = {incidents[n].pk for n in ("hook", "module", "replay", "auth", "self")}
    assert ids(response) == mine
    body = response.json()
    assert body["count"] == 5 and "next" in body and "previous" in body
    assert {row["kind"] for row in body["results"]} == set(IncidentKind.values)
    row = next(r for r in body["results"] if r["id"] == incidents["hook"].pk)
    assert row["state"] == "open" and row["tenant_id"] == TENANT and row["source_ip"] == "203.0.113.1"
    assert row["acknowledged_at"] is None and row["acknowledged_by"] == "" and row["note"] == ""
    paged = teammate.get(LIST, {"limit": 2})
    assert len(paged.json()["results"]) == 2 and paged.json()["next"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "replay"}, {"replay"}),
        ({"kind": "self_approval"}, {"self"}),
        ({"source": "198.51.100.4"}, {"replay", "auth"}),
        ({"reason": "retired_key"}, {"module"}),
        ({"state": "open"}, {"hook", "module", "replay", "auth", "self"}),
        ({"state": "acknowledged"}, set()),
    ],
)
def test_filters(teammate, incidents, query, expected):
    by_id = {incidents[name].pk: name for name in incidents}
    assert {by_id[i] for i in ids(teammate.get(LIST, query))} == expected


def test_time_window_and_state_after_acknowledging(owner, incidents):
    since = (timezone.now() - timedelta(days=1)).isoformat()
    until = (timezone.now() - timedelta(minutes=30)).isoformat()
    assert ids(owner.get(LIST, {"since": since, "until": until})) == {incidents["hook"].pk}
    owner.post(f"{LIST}/{incidents['module'].pk}/acknowledge", {"note": "key retired on purpose"}, format="json")
    assert ids(owner.get(LIST, {"state": "acknowledged"})) == {incidents["module"].pk}
    assert incidents["module"].pk not in ids(owner.get(LIST, {"state": "open"}))


@pytest.mark.parametrize(
    "query",
    [{"kind": "bogus"}, {"state": "closed"}, {"source": "not-an-ip"}, {"since": "yesterday-ish"}, {"until": "9999-12-31T23:59:59-23:00"}],
)
def test_bad_filter_values_are_400_problems(teammate, incidents, query):
    response = teammate.get(LIST, query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")


def test_detail_of_own_tenant_and_404_for_another_tenants_incident(teammate, outsider, incidents):
    detail = teammate.get(f"{LIST}/{incidents['hook'].pk}")
    assert detail.status_code == 200 and detail.json()["kind"] == "hook_signature"
    assert teammate.get(f"{LIST}/{incidents['foreign'].pk}").status_code == 404
    assert teammate.get(f"{LIST}/{incidents['platform'].pk}").status_code == 404
    assert outsider.get(f"{LIST}/{incidents['hook'].pk}").status_code == 404
    assert incidents["hook"].pk not in ids(outsider.get(LIST))
    assert teammate.get(f"{LIST}/99999999").status_code == 404
    assert teammate.get(f"{LIST}/99999999999999999999").status_code == 404  # beyond a bigint: no route


def test_acknowledge_is_audited_published_and_idempotent(owner, incidents):
    incident = incidents["hook"]
    url = f"{LIST}/{incident.pk}/acknowledge"
    response = owner.post(url, {"note": "  our CI used an old secret  "}, format="json", HTTP_X_REQUEST_ID="req-ack-1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["state"] == "acknowledged" and body["note"] == "our CI used an old secret"
    assert body["acknowledged_by"].startswith("key:") and body["acknowledged_at"]
    entry = AuditRecord.objects.get(action="security_incident.acknowledged", resource_id=str(incident.pk))
    assert entry.before == {"state": "open", "acknowledged_at": None, "acknowledged_by": "", "note": ""}
    assert entry.after["state"] == "acknowledged" and entry.after["note"] == "our CI used an old secret"
    assert entry.request_id == "req-ack-1" and entry.tenant_id == TENANT and entry.result == "success"
    event = OutboxEvent.objects.get(topic=SECURITY_INCIDENTS, event_type="security.incident.acknowledged")
    validate_event(SECURITY_INCIDENTS, event.envelope)
    assert event.envelope["data"]["incident_id"] == incident.pk and event.envelope["request_id"] == "req-ack-1"
    # again: 200, the same state, the first note kept, nothing new audited or published
    again = owner.post(url, {"note": "a second opinion"}, format="json")
    assert again.status_code == 200
    assert again.json() == body
    assert AuditRecord.objects.filter(action="security_incident.acknowledged").count() == 1
    assert OutboxEvent.objects.filter(event_type="security.incident.acknowledged").count() == 1


@pytest.mark.parametrize("payload", [{}, {"note": ""}, {"note": "   "}, {"note": "x" * (MAX_NOTE + 1)}, {"note": 12}, [1]])
def test_acknowledge_needs_a_bounded_note(owner, incidents, payload):
    response = owner.post(f"{LIST}/{incidents['hook'].pk}/acknowledge", payload, format="json")
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    assert SecurityIncident.objects.get(pk=incidents["hook"].pk).state == "open"


def test_negative_authorisation_per_endpoint(teammate, outsider, incidents):
    pk = incidents["hook"].pk
    ack = f"{LIST}/{pk}/acknowledge"
    for path in (LIST, f"{LIST}/{pk}"):
        assert api_client().get(path).status_code == 401
        assert client_with_roles([]).get(path).status_code == 403
        assert client_with_roles([Role.KERNEL_ADMIN]).get(path).status_code == 403
    assert api_client().post(ack, {"note": "x"}, format="json").status_code == 401
    # an auditor reads but may not acknowledge; nor may another admin role
    for who in (teammate, client_with_roles([Role.KERNEL_ADMIN, Role.MODULES_ADMIN])):
        response = who.post(ack, {"note": "x"}, format="json")
        assert response.status_code == 403 and response["Content-Type"].startswith("application/problem+json")
    # another tenant's security admin cannot even see it
    assert outsider.post(ack, {"note": "x"}, format="json").status_code == 404
    assert SecurityIncident.objects.get(pk=pk).state == "open"
    # the list and the detail are read-only
    assert teammate.post(LIST, {}, format="json").status_code == 405
    assert teammate.delete(f"{LIST}/{pk}").status_code == 405
    assert client_with_roles([Role.SECURITY_ADMIN]).get(ack).status_code == 405


def test_hooks_admin_may_acknowledge_and_read(incidents):
    hooks_admin = client_with_roles([Role.HOOKS_ADMIN])
    assert incidents["replay"].pk in ids(hooks_admin.get(LIST))
    response = hooks_admin.post(f"{LIST}/{incidents['replay'].pk}/acknowledge", {"note": "sender retried"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "acknowledged"


def test_incidents_without_a_verified_tenant_go_to_the_platform_tenant(teammate, incidents):
    incident = record_incident(IncidentKind.HOOK_SIGNATURE, "unknown_tenant", claimed_tenant=TENANT, source_ip="203.0.113.9")
    assert incident.tenant_id == PLATFORM and incident.details["claimed_tenant"] == TENANT
    event = OutboxEvent.objects.filter(topic=SECURITY_INCIDENTS, event_type="security.incident").last()
    assert event.tenant_id == PLATFORM and event.key == PLATFORM
    # the tenant it only claimed does not see it; the platform tenant's auditors do
    assert incident.pk not in ids(teammate.get(LIST))
    platform_auditor = client_with_roles([Role.AUDITOR], tenant=PLATFORM)
    assert ids(platform_auditor.get(LIST)) == {incidents["platform"].pk, incident.pk}
    with override_settings(AION_PLATFORM_TENANT="ops"):
        assert record_incident(IncidentKind.AUTH_FAILURE, "too_many_failed_credentials").tenant_id == "ops"


def test_a_platform_admin_acting_for_a_tenant_sees_both(client, incidents):
    """A Console user who is a member of acme and of the platform tenant (session credential, acting for acme)."""
    user = make_user("secops", roles=[Role.AUDITOR, Role.SECURITY_ADMIN], tenant=TENANT)
    user.tenants.create(tenant_id=PLATFORM)
    client.force_login(user)
    seen = ids(client.get(LIST))
    assert incidents["platform"].pk in seen and incidents["hook"].pk in seen and incidents["foreign"].pk not in seen
    # a plain member of acme does not
    other = make_user("dev", roles=[Role.AUDITOR], tenant=TENANT)
    client.force_login(other)
    assert incidents["platform"].pk not in ids(client.get(LIST))


def test_the_openapi_schema_declares_the_roles_and_the_acknowledge_body(teammate):
    schema = yaml.safe_load(teammate.get("/api/schema/").content)
    paths = schema["paths"]
    assert paths["/v1/security/incidents"]["get"]["x-required-role"] == "auditor"
    ack = paths["/v1/security/incidents/{id}/acknowledge"]["post"]
    assert ack["x-required-role"] == "security.admin"
    assert "requestBody" in ack and "200" in ack["responses"]
    names = {p["name"] for p in paths["/v1/security/incidents"]["get"]["parameters"]}
    assert {"kind", "state", "source", "since", "until", "limit", "offset"} <= names
