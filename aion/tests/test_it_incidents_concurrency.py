"""Twenty admins acknowledge one incident at the same instant, through the API on PostgreSQL: one wins, all get 200.

Each request runs in its own thread with its own database connection (``run_together``), so the row lock of
``aion.incidents.acknowledge_incident`` is PostgreSQL's own.
"""

from __future__ import annotations

import pytest

from aion.incidents import record_incident
from aion.models import AuditRecord, IncidentKind, IncidentState, OutboxEvent, SecurityIncident
from aion.roles import Role
from aion.testing.concurrency import run_together
from aion.testing.factories import TENANT, api_client, make_api_key
from aion.topics import SECURITY_INCIDENTS

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WAYS = 20


def test_twenty_concurrent_acknowledgements_record_one_and_answer_the_same_state(require_postgres):
    incident = record_incident(IncidentKind.HOOK_SIGNATURE, "bad_signature", tenant_id=TENANT, source_ip="203.0.113.9")
    keys = [make_api_key([Role.SECURITY_ADMIN], name=f"admin-{i}")[0] for i in range(WAYS)]
    url = f"/v1/security/incidents/{incident.pk}/acknowledge"

    def acknowledge(index: int):
        return api_client(keys[index]).post(url, {"note": f"seen by admin {index}"}, format="json")

    responses = run_together([lambda i=i: acknowledge(i) for i in range(WAYS)])

    assert not [r for r in responses if isinstance(r, Exception)], responses
    assert [r.status_code for r in responses] == [200] * WAYS
    stored = SecurityIncident.objects.get(pk=incident.pk)
    assert stored.state == IncidentState.ACKNOWLEDGED
    # Every answer shows the one acknowledgement that won, not its own note.
    assert {(r.json()["acknowledged_by"], r.json()["note"]) for r in responses} == {(stored.acknowledged_by, stored.note)}
    assert AuditRecord.objects.filter(action="security_incident.acknowledged", resource_id=str(incident.pk)).count() == 1
    assert OutboxEvent.objects.filter(topic=SECURITY_INCIDENTS, event_type="security.incident.acknowledged").count() == 1
