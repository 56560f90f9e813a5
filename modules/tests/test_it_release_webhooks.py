"""Module release events become outbound webhook deliveries (the hooks app listens to the outbox)."""

from __future__ import annotations

from aion.auth.principal import system_principal
from aion.testing.factories import TENANT
from aion.testing.module_releases import register
from hooks.models import WebhookDelivery
from hooks.services import create_endpoint
from modules import services
from modules.models import Module


def test_register_activate_and_rollback_each_create_a_delivery(db, key, settings, http_server):
    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
    create_endpoint(tenant_id=TENANT, url=http_server.url("/hook"), event_types=["modules.release.*"], actor=system_principal(TENANT))
    register(key, "1.0.0")
    register(key, "2.0.0")
    services.rollback_module(Module.objects.get(name="summarizer"), actor=system_principal(TENANT), reason="test")
    types = list(WebhookDelivery.objects.order_by("id").values_list("event_type", flat=True))
    assert types == [
        "modules.release.registered",
        "modules.release.activated",
        "modules.release.registered",
        "modules.release.activated",
        "modules.release.rolled_back",
    ]
