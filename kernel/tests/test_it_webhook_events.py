"""Apply and rollback reach subscribed outbound webhooks (the hooks app turns kernel.proposals events into deliveries)."""

from __future__ import annotations

import pytest

from aion.auth.principal import system_principal
from aion.testing.kernel_proposals import act, submit

pytestmark = pytest.mark.django_db


def test_apply_and_rollback_create_webhook_deliveries(proposer, admin, settings):
    from hooks.models import WebhookDelivery
    from hooks.services import create_endpoint

    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    create_endpoint(
        tenant_id="acme",
        url="http://127.0.0.1:9/kernel-events",
        event_types=["kernel.proposal.applied", "kernel.proposal.rolled_back"],
        actor=system_principal("acme"),
    )
    proposal = submit(proposer)
    act(admin, proposal["id"], "approve")
    act(admin, proposal["id"], "rollback", {"reason": "undo"})
    deliveries = list(WebhookDelivery.objects.order_by("id"))
    assert [d.event_type for d in deliveries] == ["kernel.proposal.applied", "kernel.proposal.rolled_back"]
    assert deliveries[1].payload["data"]["proposal"]["id"] == proposal["id"]
    assert deliveries[1].payload["data"]["rbac"]["required_role"] == "kernel.admin"
