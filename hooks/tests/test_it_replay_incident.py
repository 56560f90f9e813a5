"""A replayed hook delivery id is a ``replay`` security incident: one per delivery id, under the verified source's tenant."""

from __future__ import annotations

import pytest

from aion.models import OutboxEvent, SecurityIncident
from aion.rbac import Role
from aion.testing.factories import TENANT, client_with_roles
from aion.testing.hook_requests import ACME_SECRET, approval_body, post_hook, signed_headers
from aion.topics import SECURITY_INCIDENTS, validate_event

pytestmark = pytest.mark.django_db


def test_a_replayed_delivery_is_one_replay_incident_visible_to_the_tenant(proposal):
    body = approval_body(proposal.pk, "approve")
    first = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-replayed"), REMOTE_ADDR="203.0.113.50")
    assert first.status_code == 200 and "Idempotent-Replay" not in first
    assert SecurityIncident.objects.count() == 0  # the first delivery is no incident
    for _ in range(3):  # the same signed request resent, and re-signed copies: each answered from the first response
        again = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-replayed"), REMOTE_ADDR="203.0.113.50")
        assert again["Idempotent-Replay"] == "true" and again.json() == first.json()
    incident = SecurityIncident.objects.get()
    assert incident.kind == "replay" and incident.reason == "duplicate_delivery"
    assert incident.tenant_id == TENANT and incident.source_ip == "203.0.113.50"
    assert incident.details["delivery_id"] == "dlv-replayed" and incident.details["source"] == "chatops"
    assert incident.headers["x-omerta-signature"] == "[redacted]"
    event = OutboxEvent.objects.get(topic=SECURITY_INCIDENTS)
    validate_event(SECURITY_INCIDENTS, event.envelope)
    assert event.envelope["data"]["kind"] == "replay" and event.tenant_id == TENANT
    listed = client_with_roles([Role.AUDITOR]).get("/v1/security/incidents", {"kind": "replay"}).json()["results"]
    assert [row["id"] for row in listed] == [incident.pk]
    # another delivery id replayed is another incident
    other = post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-other"))
    post_hook(body, **signed_headers(body, secrets=[ACME_SECRET], delivery="dlv-other"))
    assert other.status_code in (200, 409)
    assert SecurityIncident.objects.filter(kind="replay").count() == 2
