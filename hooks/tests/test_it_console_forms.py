"""Console → Webhooks on Forms: endpoint, source and recover forms keep what was typed; deliveries CSV and htmx panel."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from aion.testing.factories import OTHER_TENANT, TENANT, make_user
from hooks.choices import DeliveryStatus
from hooks.models import HookSource, WebhookDelivery, WebhookEndpoint
from hooks.tests.helpers import make_endpoint, publish_event

pytestmark = pytest.mark.django_db

EXPORT = "/console/webhooks/deliveries/export.csv"


def login(username: str, roles: list[str], tenant: str = TENANT) -> Client:
    client = Client()
    client.force_login(make_user(username, roles=roles, tenant=tenant))
    return client


@pytest.fixture()
def owner() -> Client:
    return login("olivia", ["hooks.admin"])


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_a_refused_endpoint_keeps_the_typed_url_and_says_why(owner, settings):
    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    typed = "http://127.0.0.1:9/receiver"
    response = owner.post("/console/webhooks/", {"url": typed, "event_types": "memory.*", "description": "mine"})
    assert response.status_code == 400
    html = response.content.decode()
    assert f'value="{typed}"' in html and 'value="memory.*"' in html and 'value="mine"' in html
    assert "not an allowed webhook destination" in html
    assert not WebhookEndpoint.objects.exists()
    settings.AION_WEBHOOK_ALLOW_PRIVATE_NETWORKS = True  # the URL passes: the event types are refused
    bad_types = owner.post("/console/webhooks/", {"url": typed, "event_types": "Not Valid!"})
    assert bad_types.status_code == 400 and f'value="{typed}"' in bad_types.content.decode()
    assert "dotted names" in bad_types.content.decode()
    empty = owner.post("/console/webhooks/", {"url": "", "event_types": ""})
    assert empty.status_code == 400 and "This field is required." in empty.content.decode()


def test_a_valid_endpoint_is_created_and_the_form_starts_empty(owner, http_server):
    response = owner.post("/console/webhooks/", {"url": http_server.url("/new"), "event_types": "memory.*"})
    assert response.status_code == 200
    assert WebhookEndpoint.objects.get().url == http_server.url("/new")
    assert f'value="{http_server.url("/new")}"' not in response.content.decode()


def test_the_source_form_keeps_input_and_refuses_a_duplicate(owner):
    no_scope = owner.post("/console/webhooks/sources/", {"name": "pager", "service_identity": "hook:pager"})
    assert no_scope.status_code == 400
    assert "Choose at least one scope." in no_scope.content.decode() and 'value="pager"' in no_scope.content.decode()
    bad_name = owner.post("/console/webhooks/sources/", {"name": "not a slug", "scopes": ["kernel.approve"]})
    assert bad_name.status_code == 400 and "must be a slug" in bad_name.content.decode()
    assert 'value="kernel.approve"' in bad_name.content.decode() and "checked" in bad_name.content.decode()
    assert owner.post("/console/webhooks/sources/", {"name": "pager", "scopes": ["kernel.approve"]}).status_code == 200
    duplicate = owner.post("/console/webhooks/sources/", {"name": "pager", "scopes": ["kernel.approve"]})
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    assert HookSource.objects.filter(name="pager").count() == 1


def test_recover_refuses_a_bad_time_with_the_form_and_recovers_with_a_good_one(owner, http_server):
    make_endpoint(http_server.url("/x"))
    publish_event()
    WebhookDelivery.objects.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    bad = owner.post("/console/webhooks/deliveries/recover", {"since": "yesterday"})
    assert bad.status_code == 400 and 'value="yesterday"' in bad.content.decode() and "Give the time" in bad.content.decode()
    assert WebhookDelivery.objects.get().status == DeliveryStatus.FAILED
    foreign, _ = make_endpoint(http_server.url("/globex"), tenant=OTHER_TENANT)
    other = owner.post("/console/webhooks/deliveries/recover", {"since": "2020-01-01T00:00", "endpoint": str(foreign.pk)})
    assert other.status_code == 400 and WebhookDelivery.objects.get().status == DeliveryStatus.FAILED
    done = owner.post("/console/webhooks/deliveries/recover", {"since": "2020-01-01T00:00"})
    assert done.status_code == 302 and WebhookDelivery.objects.get().status == DeliveryStatus.PENDING


def test_the_deliveries_export_follows_the_filters_and_the_tenant(owner, http_server):
    endpoint, _ = make_endpoint(http_server.url("/x"))
    publish_event()
    publish_event("kernel.proposal.rolled_back")
    WebhookDelivery.objects.filter(event_type="kernel.proposal.rolled_back").update(status=DeliveryStatus.FAILED, last_error="HTTP 500")
    make_endpoint(http_server.url("/globex"), tenant=OTHER_TENANT)
    publish_event(tenant=OTHER_TENANT)
    rows = csv_rows(owner.get(EXPORT))
    assert rows[0][:4] == ["Created", "Event", "Delivery id", "Endpoint"] and "Redeliver" not in rows[0]
    assert len(rows) == 3 and all(row[3] == endpoint.url for row in rows[1:])
    failed = csv_rows(owner.get(EXPORT, {"status": "failed"}))
    assert [(row[1], row[4]) for row in failed[1:]] == [("kernel.proposal.rolled_back", "failed")]
    assert "HTTP 500" in failed[1], failed
    assert owner.get(EXPORT, {"status": "bogus"}).status_code == 400
    outsider = login("oscar", ["hooks.admin"], tenant=OTHER_TENANT)
    assert [row[3] for row in csv_rows(outsider.get(EXPORT))[1:]] == [http_server.url("/globex")]


def test_the_deliveries_panel_answers_htmx_and_carries_its_filters(owner, http_server):
    make_endpoint(http_server.url("/x"))
    publish_event()
    page = owner.get("/console/webhooks/deliveries/", {"status": "pending"}).content.decode()
    assert 'id="deliveries-panel"' in page and 'hx-get="/console/webhooks/deliveries/?status=pending"' in page
    assert "/static/vendor/htmx/htmx-2.0.11.min.js" in page
    partial = owner.get("/console/webhooks/deliveries/", {"status": "pending"}, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section class="card" id="deliveries-panel"') and "<html" not in partial
    delivery = WebhookDelivery.objects.get()
    redelivered = owner.post(f"/console/webhooks/deliveries/{delivery.pk}/redeliver", HTTP_HX_REQUEST="true")
    assert redelivered.status_code == 200 and "queued for redelivery" in redelivered.content.decode()


def test_negative_authorisation_of_the_forms_and_the_export():
    assert Client().get(EXPORT).status_code == 302
    reader = login("mel", ["memory.reader", "kernel.admin"])
    assert reader.get(EXPORT).status_code == 403
    assert reader.post("/console/webhooks/", {"url": "https://x.example.com", "event_types": "a.b"}).status_code == 403
    assert reader.post("/console/webhooks/sources/", {"name": "x", "scopes": ["kernel.approve"]}).status_code == 403
    assert reader.post("/console/webhooks/deliveries/recover", {"since": "2020-01-01T00:00"}).status_code == 403
    assert not WebhookEndpoint.objects.exists() and not HookSource.objects.exists()
