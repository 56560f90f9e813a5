"""The proposer approving their own proposal: 403, an audit record with result denied and a ``self_approval`` incident."""

from __future__ import annotations

import pytest

from aion.models import AuditRecord, OutboxEvent, SecurityIncident
from aion.roles import Role
from aion.testing.factories import TENANT, client_with_roles
from aion.testing.kernel_proposals import act, persona, submit
from aion.topics import SECURITY_INCIDENTS, validate_event
from kernel.models import Proposal

pytestmark = pytest.mark.django_db

JUSTIFICATION = "SEV1: ingest pool dropping connections, approvers unreachable"


@pytest.mark.parametrize(
    ("roles", "action", "body", "audited"),
    [
        ([Role.KERNEL_PROPOSER, Role.KERNEL_ADMIN], "approve", {"comment": "mine"}, "kernel.proposal.approve"),
        (
            [Role.KERNEL_PROPOSER, Role.KERNEL_BREAKGLASS],
            "breakglass",
            {"justification": JUSTIFICATION},
            "kernel.proposal.breakglass_approve",
        ),
    ],
)
def test_a_self_approval_is_refused_audited_and_an_incident(roles, action, body, audited):
    both = persona(roles, name="both")
    proposal = submit(both)
    response = act(both, proposal["id"], action, body, HTTP_X_REQUEST_ID="req-self-1")
    assert response.status_code == 403 and response.json()["type"].endswith("separation-of-duties")
    assert Proposal.objects.get(pk=proposal["id"]).state == "pending"
    entry = AuditRecord.objects.get(action=audited, resource_id=proposal["id"])
    assert entry.result == "denied" and entry.actor == both.subject and entry.request_id == "req-self-1"
    assert entry.metadata["reason"] == "separation_of_duties"
    incident = SecurityIncident.objects.get()
    assert incident.kind == "self_approval" and incident.tenant_id == TENANT
    assert incident.details["proposal_id"] == proposal["id"] and incident.details["proposer"] == both.subject
    assert incident.request_id == "req-self-1"
    event = OutboxEvent.objects.get(topic=SECURITY_INCIDENTS)
    validate_event(SECURITY_INCIDENTS, event.envelope)
    assert event.envelope["data"]["kind"] == "self_approval"
    listed = client_with_roles([Role.AUDITOR]).get("/v1/security/incidents", {"kind": "self_approval"}).json()["results"]
    assert [row["id"] for row in listed] == [incident.pk]


def test_another_admins_approval_is_no_incident(proposer, admin):
    proposal = submit(proposer)
    assert act(admin, proposal["id"], "approve").status_code == 200
    assert SecurityIncident.objects.count() == 0
