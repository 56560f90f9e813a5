"""Repeated bad credentials: 429 past the limit, counted in aion_rate_limit_rejections_total, one incident per lockout."""

from __future__ import annotations

import pytest
from django.test import override_settings
from prometheus_client import REGISTRY

from aion.models import OutboxEvent, SecurityIncident
from aion.roles import Role
from aion.testing.factories import TENANT, api_client, client_with_roles
from aion.topics import SECURITY_INCIDENTS, validate_event

pytestmark = pytest.mark.django_db

LIMITS = {"default": "1000/60", "write": "1000/60", "auth_failures": "3/60"}


def rejections() -> float:
    return REGISTRY.get_sample_value("aion_rate_limit_rejections_total", {"route_class": "auth_failures", "reason": "limit"}) or 0.0


def test_a_lockout_is_one_auth_failure_incident_under_the_platform_tenant(gateway_isolation):
    before = rejections()
    guesser = api_client("aion_deadbeef_" + "q" * 43, HTTP_X_TENANT_ID=TENANT, HTTP_USER_AGENT="guesser/1.0")
    with override_settings(AION_RATE_LIMITS=LIMITS):
        statuses = [guesser.get("/v1/whoami", REMOTE_ADDR="198.51.100.77").status_code for _ in range(6)]
        bearer = api_client(HTTP_AUTHORIZATION="Bearer not.a.jwt")
        assert bearer.get("/v1/whoami", REMOTE_ADDR="198.51.100.77").status_code == 429  # the address, whatever the credential
    assert statuses == [401, 401, 401, 429, 429, 429]
    assert rejections() == before + 4
    incident = SecurityIncident.objects.get()  # one per lockout, not one per refused request
    assert incident.kind == "auth_failure" and incident.reason == "too_many_failed_credentials"
    assert incident.source_ip == "198.51.100.77"
    # nothing verified the tenant: the platform tenant gets it, acme is only what the guesser claimed
    assert incident.tenant_id == "platform" and incident.details["claimed_tenant"] == TENANT
    assert incident.details["user_agent"] == "guesser/1.0" and incident.details["limit"] == 3
    assert "q" * 43 not in str(incident.headers) + str(incident.details)
    event = OutboxEvent.objects.get(topic=SECURITY_INCIDENTS)
    validate_event(SECURITY_INCIDENTS, event.envelope)
    assert event.tenant_id == "platform"
    # acme's auditors do not see it; the platform tenant's do
    assert client_with_roles([Role.AUDITOR]).get("/v1/security/incidents").json()["count"] == 0
    listed = client_with_roles([Role.AUDITOR], tenant="platform").get("/v1/security/incidents", {"kind": "auth_failure"})
    assert [row["id"] for row in listed.json()["results"]] == [incident.pk]


def test_another_address_locked_out_is_another_incident(gateway_isolation):
    with override_settings(AION_RATE_LIMITS=LIMITS):
        for address in ("198.51.100.80", "198.51.100.81"):
            for _ in range(5):
                api_client("aion_deadbeef_" + "r" * 43).get("/v1/whoami", REMOTE_ADDR=address)
    assert sorted(SecurityIncident.objects.values_list("source_ip", flat=True)) == ["198.51.100.80", "198.51.100.81"]
