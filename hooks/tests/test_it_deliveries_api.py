"""/v1/hooks/deliveries: list with filters, attempt detail, redeliver and recover; negative authorisation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from aion.models import AuditRecord
from aion.testing.factories import OTHER_TENANT, api_client, client_with_roles
from hooks.choices import DeliveryStatus
from hooks.models import WebhookDelivery
from hooks.services import deliver
from hooks.tests.helpers import make_endpoint, publish_event

pytestmark = pytest.mark.django_db


@pytest.fixture()
def owner():
    return client_with_roles(["hooks.admin"])


def test_list_and_filter(owner, http_server):
    first, _ = make_endpoint(http_server.url("/a"), ["*"])
    second, _ = make_endpoint(http_server.url("/b"), ["memory.*"])
    publish_event("kernel.proposal.applied")
    publish_event("memory.upload.completed", topic="aion.memory.uploads")
    http_server.default = (500, {}, {})
    deliver(WebhookDelivery.objects.get(endpoint=first, event_type="kernel.proposal.applied").pk)
    assert owner.get("/v1/hooks/deliveries").json()["count"] == 3
    retrying = owner.get("/v1/hooks/deliveries?status=retrying").json()
    assert retrying["count"] == 1 and retrying["results"][0]["attempt_log"][0]["status_code"] == 500
    assert owner.get(f"/v1/hooks/deliveries?endpoint={second.pk}").json()["count"] == 1
    assert owner.get("/v1/hooks/deliveries?event_type=memory.upload.completed").json()["count"] == 2
    assert owner.get("/v1/hooks/deliveries?status=pending&status=retrying").json()["count"] == 3
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert owner.get("/v1/hooks/deliveries", {"since": future}).json()["count"] == 0
    assert owner.get("/v1/hooks/deliveries?status=bogus").status_code == 400


def test_redeliver_sends_again_with_the_same_id(owner, http_server):
    http_server.default = (500, {}, {})
    make_endpoint(http_server.url("/a"))
    publish_event()
    delivery = WebhookDelivery.objects.get()
    now = timezone.now()
    for _ in range(5):
        delivery = deliver(delivery.pk, now=now)
        now = delivery.next_attempt_at or now
    assert delivery.status == DeliveryStatus.FAILED
    response = owner.post(f"/v1/hooks/deliveries/{delivery.pk}/redeliver")
    assert response.status_code == 202 and response.json()["status"] == "pending" and response.json()["attempts"] == 0
    http_server.default = (200, {}, {})
    again = deliver(delivery.pk)
    assert again.status == DeliveryStatus.SUCCEEDED and again.attempt_log.count() == 6
    assert {r.headers["x-omerta-delivery"] for r in http_server.requests} == {str(delivery.delivery_id)}
    assert AuditRecord.objects.filter(action="hooks.delivery.redelivered").count() == 1


def test_recover_requeues_failed_deliveries_since_a_time(owner, http_server):
    make_endpoint(http_server.url("/a"))
    for _ in range(3):
        publish_event()
    old, recent, succeeded = WebhookDelivery.objects.order_by("id")
    WebhookDelivery.objects.filter(pk=old.pk).update(status="failed", created_at=timezone.now() - timedelta(days=2))
    WebhookDelivery.objects.filter(pk=recent.pk).update(status="failed")
    WebhookDelivery.objects.filter(pk=succeeded.pk).update(status="succeeded")
    since = (timezone.now() - timedelta(days=1)).isoformat()
    response = owner.post("/v1/hooks/deliveries/recover", {"since": since}, format="json")
    assert response.status_code == 202 and response.json() == {"recovered": 1, "delivery_ids": [recent.pk]}
    statuses = dict(WebhookDelivery.objects.values_list("pk", "status"))
    assert statuses == {old.pk: "failed", recent.pk: "pending", succeeded.pk: "succeeded"}
    # recovering again finds nothing (the update is conditional)
    assert owner.post("/v1/hooks/deliveries/recover", {"since": since}, format="json").json()["recovered"] == 0
    assert owner.post("/v1/hooks/deliveries/recover", {"since": "yesterday"}, format="json").status_code == 400
    assert owner.post("/v1/hooks/deliveries/recover", {"since": since, "endpoint": 999999}, format="json").status_code == 404


def test_negative_authorisation(http_server):
    make_endpoint(http_server.url("/a"), tenant=OTHER_TENANT)
    publish_event(tenant=OTHER_TENANT)
    theirs = WebhookDelivery.objects.get()
    assert api_client().get("/v1/hooks/deliveries").status_code == 401
    assert api_client().post("/v1/hooks/deliveries/recover", {}, format="json").status_code == 401
    assert client_with_roles(["memory.writer"]).get("/v1/hooks/deliveries").status_code == 403
    assert client_with_roles(["auditor"]).post(f"/v1/hooks/deliveries/{theirs.pk}/redeliver").status_code == 403
    owner = client_with_roles(["hooks.admin"])
    assert owner.get(f"/v1/hooks/deliveries/{theirs.pk}").status_code == 404
    assert owner.post(f"/v1/hooks/deliveries/{theirs.pk}/redeliver").status_code == 404
    assert owner.get("/v1/hooks/deliveries").json()["count"] == 0
    WebhookDelivery.objects.filter(pk=theirs.pk).update(status="failed")
    since = (timezone.now() - timedelta(days=1)).isoformat()
    assert owner.post("/v1/hooks/deliveries/recover", {"since": since}, format="json").json()["recovered"] == 0
